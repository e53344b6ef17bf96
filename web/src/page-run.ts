import type { CacheEvidenceEntry, RunTimeline, TimelineStep } from './api-types.js';
import { h, mount } from './dom.js';
import { clock, duration, seconds } from './format.js';
import { renderGantt } from './gantt.js';
import { getJson, refresher, subscribe } from './live.js';
import { outcomeBadge } from './page-cohorts.js';

/** One run: totals, the Gantt timeline (one lane per peer), every step, failures with log tails. Live. */

function card(k: string, v: string, sub: string, key: string): HTMLElement {
  return h('div', { class: 'card', 'data-total': key }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), h('div', { class: 's' }, sub));
}

function legend(): HTMLElement {
  const item = (cls: string, label: string): HTMLElement => h('span', {}, h('i', { class: cls }), label);
  return h(
    'div',
    { class: 'legend' },
    item('built', 'built'),
    item('running', 'running'),
    item('backup', 'backup copy'),
    item('failed', 'failed'),
    item('lost', 'lost with its peer'),
    item('aborted', 'aborted'),
    item('wait', 'waiting (nothing assignable)'),
    item('universe', 'universe build'),
    item('universe inferred', 'universe (inferred: not reported)'),
    item('critical', 'critical path'),
    h('span', {}, '↻ retry'),
  );
}

function builder(s: TimelineStep): string {
  if (s.fromMemo) return 'memo (earlier cohort)';
  return s.builtBy ?? (s.status === 'failed' ? '—' : 'not yet');
}

function stepsTable(t: RunTimeline): HTMLElement {
  return h(
    'table',
    { id: 'steps' },
    h('thead', {}, h('tr', {}, ...['step', 'target', 'status', 'built by', 'attempts', 'duration', 'estimate'].map((c) => h('th', { class: ['attempts', 'duration', 'estimate'].includes(c) ? 'num' : null }, c)))),
    h(
      'tbody',
      {},
      ...t.steps.map((s) =>
        h(
          'tr',
          { 'data-step': s.stepId, 'data-status': s.status ?? '' },
          h('td', { class: 'mono' }, s.stepId, s.critical ? h('span', { class: 'tag crit' }, 'critical') : null, s.needs.length ? h('div', { class: 'muted' }, `needs ${s.needs.join(', ')}`) : null),
          h('td', { class: 'mono muted' }, s.target),
          h('td', {}, s.status ?? '—', s.status === 'failed' && s.failReason ? h('div', { class: 'muted' }, s.failReason) : null),
          h('td', { 'data-builder': s.builtBy ?? '' }, builder(s)),
          h('td', { class: 'num' }, s.attempts),
          h('td', { class: 'num' }, duration(s.durationMs)),
          h('td', { class: 'num' }, seconds(s.estimateSec)),
        ),
      ),
    ),
  );
}

function failures(t: RunTimeline): HTMLElement | null {
  if (t.failures.length === 0) return null;
  return h(
    'section',
    { id: 'failures' },
    h('h2', {}, 'Failures'),
    ...t.failures.map((f) =>
      h(
        'div',
        { class: 'panel failure', 'data-failure': f.stepId },
        h('strong', { class: 'mono' }, f.stepId),
        ` ${f.reason}`,
        f.peerId ? h('span', { class: 'muted' }, ` · last on ${f.peerId}${f.exitCode !== null ? `, exit ${f.exitCode}` : ''}`) : null,
        f.logTail ? h('pre', { class: 'log' }, f.logTail) : h('div', { class: 'muted' }, 'no log tail reported'),
      ),
    ),
  );
}

function cacheEvidence(entries: readonly CacheEvidenceEntry[]): HTMLElement | null {
  if (entries.length === 0) return null;
  return h(
    'section',
    { id: 'cache-evidence' },
    h('h2', {}, 'Cache evidence'),
    h('p', { class: 'muted' }, "What each peer's universe build took from the remote cache, as its build tool reported it."),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ...['peer', 'tool', 'cache hits', 'ran', 'shared steps not from the cache'].map((c) => h('th', { class: c === 'cache hits' || c === 'ran' ? 'num' : null }, c)))),
      h(
        'tbody',
        {},
        ...entries.map((e) =>
          h(
            'tr',
            { 'data-evidence': e.peerId },
            h('td', { class: 'mono' }, e.peerId),
            h('td', {}, e.tool),
            h('td', { class: 'num' }, e.hits),
            h('td', { class: 'num' }, e.misses),
            h('td', { class: 'mono' }, e.source === 'output' ? 'unknown (summary line only)' : e.missedSteps.length ? e.missedSteps.join(', ') : 'none'),
          ),
        ),
      ),
    ),
  );
}

export function runPage(root: HTMLElement, cohortId: string): void {
  let timeline: RunTimeline | null = null;
  let evidence: CacheEvidenceEntry[] = [];
  let fetchedAt = 0;
  let ganttBox: HTMLElement | null = null;
  const serverNow = (): number => (timeline ? timeline.nowMs + (Date.now() - fetchedAt) : Date.now());

  const drawGantt = (): void => {
    if (!timeline || !ganttBox) return;
    mount(ganttBox, renderGantt(timeline, ganttBox.clientWidth || 1100, serverNow()));
  };

  const draw = (t: RunTimeline): void => {
    const tot = t.totals;
    ganttBox = h('div', { class: 'gantt', id: 'gantt' });
    mount(
      root,
      h('h1', {}, 'Cohort ', h('span', { class: 'mono' }, t.cohortId), ' ', outcomeBadge(t.outcome)),
      h(
        'div',
        { class: 'meta' },
        h('span', {}, t.repo),
        h('span', { class: 'mono' }, t.baseRef + (t.patchsets.length ? ` + ${t.patchsets.join(', ')}` : '')),
        // Peers named this group explicitly: they share by this key, whatever their refs.
        t.cohortKey === null ? null : h('span', { 'data-cohort-key': t.cohortKey, title: 'its peers share by this --cohort-key, whatever their refs' }, 'cohort key ', h('span', { class: 'mono' }, t.cohortKey)),
        h('span', {}, `schema ${t.schemaId}`),
        h('span', {}, `started ${clock(t.startedAtMs)}`),
        h('a', { href: `/api/v1/cohorts/${encodeURIComponent(t.cohortId)}/trace`, download: `taskshard-${t.cohortId}.trace.json` }, 'trace (Perfetto)'),
      ),
      h(
        'div',
        { class: 'cards' },
        card('wall', duration(tot.wallMs), `${t.lanes.length} peers`, 'wall'),
        card('build time', duration(tot.buildMs), 'every lease, retries included', 'build'),
        card('runner time', duration(tot.runnerMs), 'peers × wall, waits included', 'runner'),
        card('waiting', duration(tot.waitMs), 'peers idle, nothing assignable', 'wait'),
        card('saved · build', seconds(tot.savedBuildSec), 'work not repeated', 'saved-build'),
        card('saved · runner', seconds(tot.savedRunnerSec), 'vs each peer building every step', 'saved-runner'),
      ),
      h('h2', {}, 'Timeline'),
      legend(),
      ganttBox,
      t.criticalPath.length ? h('p', { class: 'muted' }, `Critical path: ${t.criticalPath.join(' → ')}`) : null,
      failures(t),
      h('h2', {}, 'Steps'),
      stepsTable(t),
      cacheEvidence(evidence),
    );
    drawGantt();
  };

  const refresh = refresher(
    async () => {
      const id = encodeURIComponent(cohortId);
      const [t, ev] = await Promise.all([getJson<RunTimeline>(`/api/v1/cohorts/${id}/timeline`), getJson<{ peers: CacheEvidenceEntry[] }>(`/api/v1/cohorts/${id}/cache-evidence`)]);
      evidence = ev.peers;
      timeline = t;
      fetchedAt = Date.now();
      draw(t);
    },
    (err) => mount(root, h('h1', {}, 'Cohort ', h('span', { class: 'mono' }, cohortId)), h('p', { class: 'error' }, err.message)),
  );
  refresh();
  subscribe(`?cohort=${encodeURIComponent(cohortId)}`, {
    cohort: refresh,
    // A peer's cache evidence arrives whole: replace that peer's row and redraw, nothing to fetch.
    cacheEvidence: ({ evidence: e }) => {
      evidence = [...evidence.filter((x) => x.peerId !== e.peerId), e];
      if (timeline) draw(timeline);
    },
  });
  // Open bars grow with the clock between pushes; this redraws locally and fetches nothing.
  setInterval(() => {
    if (timeline && timeline.lanes.some((l) => l.bars.some((b) => b.open))) drawGantt();
  }, 1000);
  addEventListener('resize', drawGantt);
}
