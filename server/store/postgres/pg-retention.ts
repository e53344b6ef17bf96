import type { PruneResult, Retention } from '../../core/store-port.js';
import type { Sql } from './pg-connection.js';

/**
 * History pruning on PostgreSQL: one bounded transaction per call, children
 * first (foreign keys), the cohort rows last; memos and durations stay. The
 * due cohorts are locked (`FOR UPDATE`) so two pruners never race on a batch.
 */
const children = [
  ['events', 'events'],
  ['successes', 'step_successes'],
  ['leases', 'leases'],
  ['peers', 'peers'],
  ['steps', 'steps'],
] as const;

// A resolved cohort with a member still connected or in grace stays (the authority keeps it in memory until they leave).
const due = `FROM cohorts WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1::bigint AND status <> 'open'
  AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.cohort_id = cohorts.cohort_id AND p.status IN ('connected', 'disconnected'))`;

export class PgRetention implements Retention {
  constructor(private readonly sql: Sql) {}

  async pruneHistory(resolvedBeforeMs: number, maxCohorts: number): Promise<PruneResult> {
    if (!Number.isSafeInteger(resolvedBeforeMs)) throw new RangeError(`pruneHistory: resolvedBeforeMs must be an integer time in ms, got ${resolvedBeforeMs}`);
    if (!Number.isInteger(maxCohorts) || maxCohorts < 1 || maxCohorts > 10_000) {
      throw new RangeError(`pruneHistory: maxCohorts must be an integer from 1 to 10000, got ${maxCohorts}`);
    }
    return this.sql.begin(async (tx) => {
      const picked = await tx.unsafe(`SELECT cohort_id ${due} ORDER BY resolved_at_ms, cohort_id LIMIT $2::int FOR UPDATE`, [resolvedBeforeMs, maxCohorts]);
      // A jsonb parameter: the client serializes the array as JSON.
      const ids = picked.map((r) => String(r['cohort_id']));
      const removed = { cohorts: 0, steps: 0, successes: 0, leases: 0, peers: 0, events: 0 };
      if (picked.length > 0) {
        for (const [key, table] of children) {
          removed[key] = (await tx.unsafe(`DELETE FROM ${table} WHERE cohort_id IN (SELECT jsonb_array_elements_text($1::jsonb))`, [ids])).count;
        }
        removed.cohorts = (await tx.unsafe('DELETE FROM cohorts WHERE cohort_id IN (SELECT jsonb_array_elements_text($1::jsonb))', [ids])).count;
      }
      const more = (await tx.unsafe(`SELECT EXISTS (SELECT 1 ${due}) AS more`, [resolvedBeforeMs]))[0]!['more'] === true;
      const removedRows = Object.values(removed).reduce((a, b) => a + b, 0);
      return { removed, removedRows, more };
    }) as Promise<PruneResult>;
  }
}
