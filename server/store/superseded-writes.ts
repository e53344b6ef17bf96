import type { Write } from '../core/records.js';

/**
 * Duration writes of a batch that a later write of the same key in the same batch overwrites
 * (both stores skip them; issue 17). A duration row is a plain overwrite with no guard (a moving
 * average per repo, schema and step), and a batch commits whole, so only its last write of a key
 * is seen by anyone. Cohorts that share a schema and run in step finish the same step ids in the
 * same event-loop turn: in bench/store-cost-probe.ts's default shape (100 cohorts of 10 × 1,000,
 * every peer finishing at once, 166 inputs per commit) only 6,962 of 100,000 duration writes were
 * the last of their key in their batch; in the authority, as many as its cohorts stay in step.
 * Null when nothing is superseded.
 */
export function supersededDurations(writes: readonly Write[]): Set<Write> | null {
  let last: Map<string, Write> | null = null;
  let superseded: Set<Write> | null = null;
  for (const w of writes) {
    if (w.table !== 'duration') continue;
    last ??= new Map();
    const before = last.get(w.row.durationKey);
    if (before !== undefined) (superseded ??= new Set()).add(before);
    last.set(w.row.durationKey, w);
  }
  return superseded;
}
