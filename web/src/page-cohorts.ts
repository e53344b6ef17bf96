import type { CohortListEntry } from './api-types.js';
import { h, mount } from './dom.js';
import { dateTime, seconds } from './format.js';
import { getJson, refresher, subscribe } from './live.js';

/** Cohorts: open and recent runs, filtered by repo, pipeline and outcome (kept in the URL), live. */

const outcomeChoices = ['running', 'succeeded', 'failed', 'cancelled', 'abandoned'];

export function outcomeBadge(outcome: string | null): HTMLElement {
  const label = outcome ?? 'running';
  return h('span', { class: `badge ${label}`, 'data-outcome': label }, label);
}

function progress(c: CohortListEntry): HTMLElement {
  const done = c.steps.succeeded;
  const failed = c.steps.failed;
  const total = Math.max(c.steps.total, 1);
  const bar = h('span', { class: 'progress', title: `${done} succeeded, ${failed} failed, ${c.steps.total - done - failed} to go` });
  const seg = (cls: string, n: number): HTMLElement => {
    const el = h('span', { class: cls });
    el.style.width = `${(n / total) * 100}%`;
    return el;
  };
  bar.append(seg('done', done), seg('fail', failed));
  return h('span', {}, bar, `${done + failed}/${c.steps.total}`);
}

function select(name: string, label: string, values: readonly string[], current: string, onChange: (v: string) => void): HTMLElement {
  const sel = h('select', { name, 'data-filter': name }, h('option', { value: '' }, 'all'), ...values.map((v) => h('option', { value: v, selected: v === current }, v))) as HTMLSelectElement;
  sel.addEventListener('change', () => onChange(sel.value));
  return h('label', {}, label, sel);
}

export function cohortsPage(root: HTMLElement): void {
  let cohorts: CohortListEntry[] = [];
  const params = new URLSearchParams(location.search);
  const filter = { repo: params.get('repo') ?? '', pipeline: params.get('pipeline') ?? '', outcome: params.get('outcome') ?? '' };

  const draw = (): void => {
    const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();
    const setFilter = (key: keyof typeof filter) => (v: string) => {
      filter[key] = v;
      const q = new URLSearchParams(Object.entries(filter).filter(([, val]) => val !== ''));
      history.replaceState(null, '', `${location.pathname}${q.size ? `?${q}` : ''}`);
      draw();
    };
    const shown = cohorts.filter(
      (c) => (!filter.repo || c.repo === filter.repo) && (!filter.pipeline || c.pipelineType === filter.pipeline) && (!filter.outcome || (c.outcome ?? 'running') === filter.outcome),
    );
    const rows = shown.map((c) =>
      h(
        'tr',
        { 'data-cohort': c.id },
        h('td', {}, h('a', { href: `/cohorts/${encodeURIComponent(c.id)}`, class: 'mono' }, c.id), h('div', { class: 'muted' }, c.schemaId)),
        h('td', {}, c.repo),
        h('td', { class: 'mono' }, c.baseRef, c.patchsets.length ? h('div', { class: 'muted' }, c.patchsets.join(', ')) : null),
        h('td', {}, c.pipelineType),
        h('td', { class: 'num' }, c.peers),
        h('td', {}, progress(c)),
        h('td', {}, outcomeBadge(c.outcome)),
        h('td', { class: 'num' }, seconds(c.secondsSaved)),
        h('td', { class: 'muted' }, dateTime(c.createdAt)),
      ),
    );
    mount(
      root,
      h('h1', {}, 'Cohorts'),
      h('p', { class: 'muted' }, 'Open and recent runs, newest first. Updates live.'),
      h(
        'div',
        { class: 'filters' },
        select('repo', 'repo', uniq(cohorts.map((c) => c.repo)), filter.repo, setFilter('repo')),
        select('pipeline', 'pipeline', uniq(cohorts.map((c) => c.pipelineType)), filter.pipeline, setFilter('pipeline')),
        select('outcome', 'outcome', outcomeChoices, filter.outcome, setFilter('outcome')),
        h('span', { class: 'muted' }, `${shown.length} of ${cohorts.length}`),
      ),
      shown.length === 0
        ? h('div', { class: 'panel empty' }, cohorts.length === 0 ? 'No cohorts yet: start peers against this authority.' : 'No cohort matches these filters.')
        : h(
            'table',
            { id: 'cohorts' },
            h('thead', {}, h('tr', {}, ...['cohort', 'repo', 'refs', 'pipeline', 'peers', 'progress', 'outcome', 'saved (build)', 'created'].map((c) => h('th', { class: c === 'peers' || c.startsWith('saved') ? 'num' : null }, c)))),
            h('tbody', {}, ...rows),
          ),
    );
  };

  const refresh = refresher(
    async () => {
      cohorts = (await getJson<{ cohorts: CohortListEntry[] }>('/api/v1/cohorts?limit=200')).cohorts;
      draw();
    },
    (err) => mount(root, h('p', { class: 'error' }, `Could not load cohorts: ${err.message}`)),
  );
  refresh();
  subscribe('', { cohort: refresh });
}
