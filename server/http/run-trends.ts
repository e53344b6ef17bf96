import type { RunTimeline } from './run-timeline.js';

/**
 * The dashboard's Trends page: per schema and UTC day, how many runs, how
 * many steps were built versus reused from a memo, the time saved in both
 * units, and how many runs failed. Pure: timelines in, rows out.
 */
export interface TrendRow {
  readonly schemaId: string;
  /** UTC day, YYYY-MM-DD. */
  readonly day: string;
  readonly runs: number;
  readonly stepsBuilt: number;
  readonly stepsReused: number;
  readonly savedBuildSec: number;
  readonly savedRunnerSec: number;
  readonly failed: number;
  readonly abandoned: number;
}

export function trendRows(timelines: readonly RunTimeline[]): TrendRow[] {
  const rows = new Map<string, { -readonly [K in keyof TrendRow]: TrendRow[K] }>();
  for (const t of timelines) {
    const day = new Date(t.startedAtMs).toISOString().slice(0, 10);
    const key = `${t.schemaId}\u0000${day}`;
    let row = rows.get(key);
    if (!row) {
      row = { schemaId: t.schemaId, day, runs: 0, stepsBuilt: 0, stepsReused: 0, savedBuildSec: 0, savedRunnerSec: 0, failed: 0, abandoned: 0 };
      rows.set(key, row);
    }
    row.runs++;
    for (const s of t.steps) {
      if (s.status !== 'succeeded') continue;
      if (s.fromMemo) row.stepsReused++;
      else row.stepsBuilt++;
    }
    row.savedBuildSec += t.totals.savedBuildSec ?? 0;
    row.savedRunnerSec += t.totals.savedRunnerSec ?? 0;
    if (t.outcome === 'failed') row.failed++;
    if (t.outcome === 'abandoned') row.abandoned++;
  }
  return [...rows.values()]
    .map((r) => ({ ...r, savedBuildSec: Math.round(r.savedBuildSec * 10) / 10, savedRunnerSec: Math.round(r.savedRunnerSec * 10) / 10 }))
    .sort((a, b) => b.day.localeCompare(a.day) || a.schemaId.localeCompare(b.schemaId));
}
