import type { RunTimeline } from './run-timeline.js';

/**
 * The dashboard's Trends page: per schema and UTC day, how many runs, how
 * many steps were built versus reused from a memo, the time saved in both
 * units, runner time used, and how many runs failed. Pure: timelines in, rows
 * out. Each run is reduced to a {@link CohortTrend} first, so a cache can keep
 * the small per-run figures instead of recomputing timelines (trend-cache.ts).
 */
export interface TrendRow {
  readonly schemaId: string;
  /** UTC day, YYYY-MM-DD. */
  readonly day: string;
  readonly runs: number;
  readonly stepsBuilt: number;
  readonly stepsReused: number;
  /** Build time saved (s): step builds not repeated. */
  readonly savedBuildSec: number;
  /** Runner time saved (s): every peer building every step alone, minus its join to universe start; may be negative. */
  readonly savedRunnerSec: number;
  /** Runner time used (s): peers x wall, waiting included. */
  readonly runnerSec: number;
  readonly failed: number;
  readonly abandoned: number;
}

/** One run's share of its trend row. */
export interface CohortTrend {
  readonly cohortId: string;
  readonly schemaId: string;
  readonly day: string;
  readonly stepsBuilt: number;
  readonly stepsReused: number;
  readonly savedBuildSec: number;
  readonly savedRunnerSec: number;
  readonly runnerSec: number;
  readonly failed: boolean;
  readonly abandoned: boolean;
}

/** The UTC day (YYYY-MM-DD) of an epoch-millisecond time. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function cohortTrend(t: RunTimeline): CohortTrend {
  let stepsBuilt = 0;
  let stepsReused = 0;
  for (const s of t.steps) {
    if (s.status !== 'succeeded') continue;
    if (s.fromMemo) stepsReused++;
    else stepsBuilt++;
  }
  return {
    cohortId: t.cohortId,
    schemaId: t.schemaId,
    day: utcDay(t.startedAtMs),
    stepsBuilt,
    stepsReused,
    savedBuildSec: t.totals.savedBuildSec ?? 0,
    savedRunnerSec: t.totals.savedRunnerSec ?? 0,
    runnerSec: t.totals.runnerMs / 1000,
    failed: t.outcome === 'failed',
    abandoned: t.outcome === 'abandoned',
  };
}

/**
 * A run whose figures can no longer change: resolved, and every peer has left (a
 * connected peer still adds runner time and its universe bar).
 */
export function isSettled(t: RunTimeline): boolean {
  return t.outcome !== null && t.lanes.every((l) => l.leftAtMs !== null || l.status === 'gone' || l.status === 'left');
}

/** Rows per schema and day, newest day first. */
export function trendRowsOf(trends: readonly CohortTrend[]): TrendRow[] {
  const rows = new Map<string, { -readonly [K in keyof TrendRow]: TrendRow[K] }>();
  for (const t of trends) {
    const key = `${t.schemaId}\u0000${t.day}`;
    let row = rows.get(key);
    if (!row) {
      row = { schemaId: t.schemaId, day: t.day, runs: 0, stepsBuilt: 0, stepsReused: 0, savedBuildSec: 0, savedRunnerSec: 0, runnerSec: 0, failed: 0, abandoned: 0 };
      rows.set(key, row);
    }
    row.runs++;
    row.stepsBuilt += t.stepsBuilt;
    row.stepsReused += t.stepsReused;
    row.savedBuildSec += t.savedBuildSec;
    row.savedRunnerSec += t.savedRunnerSec;
    row.runnerSec += t.runnerSec;
    if (t.failed) row.failed++;
    if (t.abandoned) row.abandoned++;
  }
  const tenth = (x: number): number => Math.round(x * 10) / 10;
  return [...rows.values()]
    .map((r) => ({ ...r, savedBuildSec: tenth(r.savedBuildSec), savedRunnerSec: tenth(r.savedRunnerSec), runnerSec: tenth(r.runnerSec) }))
    .sort((a, b) => b.day.localeCompare(a.day) || a.schemaId.localeCompare(b.schemaId));
}

export function trendRows(timelines: readonly RunTimeline[]): TrendRow[] {
  return trendRowsOf(timelines.map(cohortTrend));
}
