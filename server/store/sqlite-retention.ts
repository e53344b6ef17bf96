import type Database from 'better-sqlite3';
import type { PruneResult, Retention } from '../core/store-port.js';
import type { PruneSql, WalCheckpointer } from './sqlite-checkpointer.js';

/**
 * History pruning on SQLite: one bounded transaction per call. Children go
 * first (foreign keys), the cohort rows last; memos and durations stay.
 */
const children = [
  ['events', 'events'],
  ['successes', 'step_successes'],
  ['leases', 'leases'],
  ['peers', 'peers'],
  ['steps', 'steps'],
] as const;

/**
 * Cohorts due for pruning, oldest resolution first. A resolved cohort with a
 * member still connected or in its grace period is the authority's to keep
 * (in memory past its retention until they leave): never pruned under it.
 */
const due = `FROM cohorts WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < @before AND status <> 'open'
  AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.cohort_id = cohorts.cohort_id AND p.status IN ('connected', 'disconnected'))`;

/** The statements of one batch; the background worker (sqlite-checkpointer.ts) prepares the same on its connection. */
export const pruneSql: PruneSql = {
  pick: `SELECT cohort_id ${due} ORDER BY resolved_at_ms, cohort_id LIMIT @limit`,
  more: `SELECT EXISTS (SELECT 1 ${due}) AS more`,
  deletes: children.map(([key, table]) => [key, `DELETE FROM ${table} WHERE cohort_id IN (SELECT value FROM json_each(?))`] as const),
  deleteCohorts: 'DELETE FROM cohorts WHERE cohort_id IN (SELECT value FROM json_each(?))',
};

export class SqliteRetention implements Retention {
  private readonly prune: (before: number, maxCohorts: number) => PruneResult;

  /**
   * With a running background `checkpointer` (the authority's), a batch runs on its worker, off the
   * event loop; one that has stopped is still the commit gate a batch here waits for, as commits do.
   */
  constructor(
    db: Database.Database,
    private readonly beforeCommit: () => void = () => undefined,
    private readonly checkpointer: WalCheckpointer | null = null,
  ) {
    const pick = db.prepare(pruneSql.pick).pluck();
    const more = db.prepare(pruneSql.more).pluck();
    const deletes = pruneSql.deletes.map(([key, text]) => [key as keyof PruneResult['removed'], db.prepare(text)] as const);
    const deleteCohorts = db.prepare(pruneSql.deleteCohorts);
    this.prune = db.transaction((before: number, maxCohorts: number): PruneResult => {
      const ids = JSON.stringify(pick.all({ before, limit: maxCohorts }));
      const removed = { cohorts: 0, steps: 0, successes: 0, leases: 0, peers: 0, events: 0 };
      for (const [key, stmt] of deletes) removed[key] = stmt.run(ids).changes;
      removed.cohorts = deleteCohorts.run(ids).changes;
      const removedRows = Object.values(removed).reduce((a, b) => a + b, 0);
      return { removed, removedRows, more: more.get({ before }) === 1 };
    });
  }

  async pruneHistory(resolvedBeforeMs: number, maxCohorts: number): Promise<PruneResult> {
    if (!Number.isSafeInteger(resolvedBeforeMs)) throw new RangeError(`pruneHistory: resolvedBeforeMs must be an integer time in ms, got ${resolvedBeforeMs}`);
    if (!Number.isInteger(maxCohorts) || maxCohorts < 1 || maxCohorts > 10_000) {
      throw new RangeError(`pruneHistory: maxCohorts must be an integer from 1 to 10000, got ${maxCohorts}`);
    }
    const gate = this.checkpointer;
    if (gate?.running === true) {
      this.beforeCommit();
      return gate.run({ kind: 'prune', before: resolvedBeforeMs, maxCohorts });
    }
    while (gate !== null && !gate.enter()) await gate.free();
    try {
      this.beforeCommit();
      return this.prune(resolvedBeforeMs, maxCohorts);
    } finally {
      gate?.leave();
    }
  }
}
