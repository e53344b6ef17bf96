import type { CohortListEntry } from './api-types.js';
import { h, mount } from './dom.js';
import { dateTime, seconds } from './format.js';
import { getJson, refresher, subscribe } from './live.js';

/** Cohorts: open and recent runs, filtered by repo, pipeline name and outcome on the server (kept in the URL), a page at a time, live. */

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

/** A free-text filter with suggestions (what the pages seen so far held); applied on change (Enter or leaving the field). */
function textFilter(name: string, label: string, suggestions: readonly string[], current: string, onChange: (v: string) => void): HTMLElement {
  const listId = `${name}-seen`;
  const input = h('input', { name, 'data-filter': name, list: listId, value: current, placeholder: 'all', size: 28 }) as HTMLInputElement;
  input.addEventListener('change', () => onChange(input.value.trim()));
  return h('label', {}, label, input, h('datalist', { id: listId }, ...suggestions.map((v) => h('option', { value: v }))));
}

/** Rows per page of GET /api/v1/cohorts. */
const pageSize = 50;

export function cohortsPage(root: HTMLElement): void {
  let cohorts: CohortListEntry[] = [];
  let next: string | null = null;
  // Cursors of the pages before this one (empty: the newest page).
  const cursors: string[] = [];
  const seen = { repo: new Set<string>(), pipeline: new Set<string>() };
  const params = new URLSearchParams(location.search);
  const filter = { repo: params.get('repo') ?? '', pipeline: params.get('pipeline') ?? '', outcome: params.get('outcome') ?? '' };

  // The filters go to the server (repo, pipeline name, outcome), so they apply to every cohort it keeps, not to one page.
  const url = (): string => {
    const q = new URLSearchParams({ limit: String(pageSize) });
    for (const [k, v] of Object.entries(filter)) if (v !== '') q.set(k, v);
    const before = cursors[cursors.length - 1];
    if (before !== undefined) q.set('before', before);
    return `/api/v1/cohorts?${q}`;
  };

  const draw = (): void => {
    const setFilter = (key: keyof typeof filter) => (v: string) => {
      filter[key] = v;
      const q = new URLSearchParams(Object.entries(filter).filter(([, val]) => val !== ''));
      history.replaceState(null, '', `${location.pathname}${q.size ? `?${q}` : ''}`);
      cursors.length = 0;
      refresh();
    };
    const rows = cohorts.map((c) =>
      h(
        'tr',
        { 'data-cohort': c.id },
        h('td', {}, h('a', { href: `/cohorts/${encodeURIComponent(c.id)}`, class: 'mono' }, c.id), h('div', { class: 'muted' }, c.schemaId)),
        h('td', {}, c.repo),
        h(
          'td',
          { class: 'mono' },
          c.baseRef,
          c.patchsets.length ? h('div', { class: 'muted' }, c.patchsets.join(', ')) : null,
          c.cohortKey === null ? null : h('div', { class: 'muted', 'data-cohort-key': c.cohortKey }, `key ${c.cohortKey}`),
        ),
        h('td', {}, c.pipelineNames.join(', '), h('div', { class: 'muted' }, c.pipelineType)),
        h('td', { class: 'num' }, c.peers),
        h('td', {}, progress(c)),
        h('td', {}, outcomeBadge(c.outcome)),
        h('td', { class: 'num' }, seconds(c.secondsSaved)),
        h('td', { class: 'muted' }, dateTime(c.createdAt)),
      ),
    );
    const filtered = Object.values(filter).some((v) => v !== '');
    const pager = h(
      'span',
      { class: 'pager' },
      cursors.length > 0 ? button('newest', 'page-newest', () => ((cursors.length = 0), refresh())) : null,
      cursors.length > 0 ? button('← newer', 'page-newer', () => (cursors.pop(), refresh())) : null,
      next !== null ? button('older →', 'page-older', () => (cursors.push(next!), refresh())) : null,
    );
    mount(
      root,
      h('h1', {}, 'Cohorts'),
      h('p', { class: 'muted' }, 'Open and recent runs, newest first. Updates live.'),
      h(
        'div',
        { class: 'filters' },
        textFilter('repo', 'repo', [...seen.repo].sort(), filter.repo, setFilter('repo')),
        textFilter('pipeline', 'pipeline', [...seen.pipeline].sort(), filter.pipeline, setFilter('pipeline')),
        select('outcome', 'outcome', outcomeChoices, filter.outcome, setFilter('outcome')),
        h('span', { class: 'muted', id: 'page-info' }, `${cohorts.length} shown${cursors.length > 0 ? `, page ${cursors.length + 1}` : ''}`),
        pager,
      ),
      cohorts.length === 0
        ? h('div', { class: 'panel empty' }, filtered ? 'No cohort matches these filters.' : 'No cohorts yet: start peers against this authority.')
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
      const body = await getJson<{ cohorts: CohortListEntry[]; next: string | null }>(url());
      cohorts = body.cohorts;
      next = body.next;
      for (const c of cohorts) {
        seen.repo.add(c.repo);
        for (const name of c.pipelineNames) seen.pipeline.add(name);
      }
      draw();
    },
    (err) => mount(root, h('p', { class: 'error' }, `Could not load cohorts: ${err.message}`)),
  );
  refresh();
  subscribe('', { cohort: refresh });
}

function button(label: string, id: string, onClick: () => void): HTMLElement {
  const b = h('button', { type: 'button', id }, label);
  b.addEventListener('click', onClick);
  return b;
}
