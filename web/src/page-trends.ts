import type { TrendRow } from './api-types.js';
import { h, mount } from './dom.js';
import { seconds } from './format.js';
import { getJson, refresher, subscribe } from './live.js';

/** Trends: per schema and day, runs, steps built vs reused, time saved in both units, runner time used, failures. Re-read when a cohort resolves. */
export function trendsPage(root: HTMLElement): void {
  const draw = (body: { days: number; runs: number; truncated: boolean; rows: TrendRow[] }): void => {
    mount(
      root,
      h('h1', {}, 'Trends'),
      h('p', { class: 'muted' }, `Last ${body.days} days, ${body.runs} runs${body.truncated ? ' (the newest only)' : ''}, per schema and UTC day.`),
      body.rows.length === 0
        ? h('div', { class: 'panel empty' }, 'No runs in this period.')
        : h(
            'table',
            { id: 'trends' },
            h('thead', {}, h('tr', {}, ...['day', 'schema', 'runs', 'steps built', 'steps reused', 'saved · build', 'runner time', 'saved · runner', 'failed', 'abandoned'].map((c) => h('th', { class: c === 'day' || c === 'schema' ? null : 'num' }, c)))),
            h(
              'tbody',
              {},
              ...body.rows.map((r) =>
                h(
                  'tr',
                  {},
                  h('td', {}, r.day),
                  h('td', {}, r.schemaId),
                  h('td', { class: 'num' }, r.runs),
                  h('td', { class: 'num' }, r.stepsBuilt),
                  h('td', { class: 'num' }, r.stepsReused),
                  h('td', { class: 'num' }, seconds(r.savedBuildSec)),
                  h('td', { class: 'num' }, seconds(r.runnerSec)),
                  h('td', { class: 'num' }, seconds(r.savedRunnerSec)),
                  h('td', { class: 'num' }, r.failed),
                  h('td', { class: 'num' }, r.abandoned),
                ),
              ),
            ),
          ),
    );
  };
  const refresh = refresher(
    async () => draw(await getJson('/api/v1/trends?days=14')),
    (err) => mount(root, h('p', { class: 'error' }, `Could not load trends: ${err.message}`)),
  );
  refresh();
  subscribe('', { cohort: (c) => (c === null || c.status !== null ? refresh() : undefined) });
}
