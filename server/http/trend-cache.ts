import type { RunReader } from './run-reader.js';
import { runTimeline } from './run-timeline.js';
import { cohortTrend, isSettled, trendRowsOf, utcDay, type CohortTrend, type TrendRow } from './run-trends.js';

/**
 * Trends without recomputing history on every request. A run's figures stop
 * changing once it is settled (resolved, every peer gone), so each settled run
 * is reduced once to its small {@link CohortTrend}; a UTC day that has ended
 * with every run settled is kept whole. A request then reads only today's (and
 * any unsettled day's) cohort ids from the store and builds timelines only for
 * runs still going: after a day of history it costs what it cost before.
 *
 * A committed change to a cohort drops what is cached for it (`invalidate`,
 * fed by the authority's commits); whole days also expire after `dayTtlMs`, so
 * history pruning, or writes by another authority sharing the database, show
 * up within that time.
 */
export interface TrendWindow {
  readonly days: number;
  readonly runs: number;
  /** Some day had more than `maxRunsPerDay` runs: only its newest count. */
  readonly truncated: boolean;
  readonly rows: TrendRow[];
}

interface DayEntry {
  readonly trends: readonly CohortTrend[];
  readonly truncated: boolean;
  readonly cachedAtMs: number;
}

const dayMs = 86_400_000;

export class TrendCache {
  private readonly settled = new Map<string, CohortTrend>();
  private readonly days = new Map<string, DayEntry>();
  private readonly dayOfCohort = new Map<string, string>();
  /** Timelines built by the last `window()` call (what a request cost; read by tests). */
  lastBuilt = 0;

  constructor(
    private readonly runs: RunReader,
    readonly maxRunsPerDay = 500,
    private readonly dayTtlMs = 3_600_000,
  ) {}

  /** Nothing is cached (no trends were asked for since start, or all was forgotten): a commit has nothing to invalidate. */
  get holdsNothing(): boolean {
    return this.settled.size === 0 && this.days.size === 0;
  }

  /** A committed write touched these cohorts: forget what was cached for them. */
  invalidate(cohortIds: Iterable<string>): void {
    for (const id of cohortIds) {
      this.settled.delete(id);
      const day = this.dayOfCohort.get(id);
      if (day === undefined) continue;
      // The day's other runs stay cached one by one: only this run is built again.
      for (const t of this.days.get(day)?.trends ?? []) if (t.cohortId !== id) this.settled.set(t.cohortId, t);
      this.dropDay(day);
    }
  }

  /** The last `days` UTC days up to `nowMs` (today included), per schema and day. */
  async window(nowMs: number, days: number): Promise<TrendWindow> {
    this.lastBuilt = 0;
    const today = Math.floor(nowMs / dayMs) * dayMs;
    const all: CohortTrend[] = [];
    let truncated = false;
    for (let i = 0; i < days; i++) {
      const start = today - i * dayMs;
      const entry = await this.day(start, nowMs);
      all.push(...entry.trends);
      truncated ||= entry.truncated;
    }
    this.evictBefore(utcDay(today - 90 * dayMs));
    return { days, runs: all.length, truncated, rows: trendRowsOf(all) };
  }

  private async day(startMs: number, nowMs: number): Promise<DayEntry> {
    const key = utcDay(startMs);
    const cached = this.days.get(key);
    if (cached && nowMs - cached.cachedAtMs < this.dayTtlMs) return cached;
    if (cached) this.dropDay(key);
    const ids = await this.runs.recentCohortIds(startMs, this.maxRunsPerDay, startMs + dayMs);
    const trends: CohortTrend[] = [];
    let allSettled = true;
    for (const id of ids) {
      const known = this.settled.get(id);
      if (known) {
        trends.push(known);
        continue;
      }
      const run = await this.runs.cohortRun(id);
      if (!run) continue; // pruned between the two reads
      const timeline = runTimeline(run, nowMs);
      this.lastBuilt++;
      const trend = cohortTrend(timeline);
      trends.push(trend);
      if (isSettled(timeline)) this.settled.set(id, trend);
      else allSettled = false;
    }
    const entry: DayEntry = { trends, truncated: ids.length === this.maxRunsPerDay, cachedAtMs: nowMs };
    // A day still running (today) or holding a run still going is read again next time.
    if (nowMs >= startMs + dayMs && allSettled) {
      this.days.set(key, entry);
      for (const t of trends) {
        this.dayOfCohort.set(t.cohortId, key);
        this.settled.delete(t.cohortId);
      }
    }
    return entry;
  }

  private dropDay(key: string): void {
    const entry = this.days.get(key);
    if (!entry) return;
    this.days.delete(key);
    for (const t of entry.trends) this.dayOfCohort.delete(t.cohortId);
  }

  private evictBefore(oldestDay: string): void {
    for (const key of [...this.days.keys()]) if (key < oldestDay) this.dropDay(key);
    for (const [id, t] of this.settled) if (t.day < oldestDay) this.settled.delete(id);
  }
}
