import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { MemoRecord } from './records.js';
import type { SchedulerState } from './scheduler-state.js';
import { untrack } from './source-quota.js';

/**
 * The retention sweep, in bounded steps (DESIGN §11). Everything it may do is
 * a deadline in one min-heap (`state.sweepDeadlines`):
 * - a memo expires (`now >= expiresAtMs`): it is deleted;
 * - an open cohort with no active member (nobody joined, or everyone left)
 *   is abandoned once `lastActivityMs + min(idleCohortTtl, retention)` has passed;
 * - a resolved cohort with no active member leaves memory once
 *   `resolvedAtMs + retention` has passed (the database keeps it until
 *   `--history-days`).
 * Entries are checked when they come up (lazy validation): a memo that was
 * replaced, or a cohort entry that is not the cohort's current deadline, is
 * dropped; a cohort with active members is looked at again later.
 *
 * A sweep runs at most every `sweepIntervalMs` and handles at most
 * `sweepBatch` entries; when more are due it asks to run again at once
 * (`nextSweepAtMs = now`), so a backlog is spread over ticks and no tick does
 * more than a batch of work, whatever is due.
 */
export type SweepEntry = { readonly kind: 'memo'; readonly memo: MemoRecord } | { readonly kind: 'cohort'; readonly cohort: Cohort };

/** When the sweep should next look at a cohort: the idle TTL while open, the retention once resolved. */
export function cohortSweepAtMs(state: SchedulerState, cohort: Cohort): number {
  const r = cohort.record;
  if (r.status === 'open') return r.lastActivityMs + idleTtlMs(state);
  return (r.resolvedAtMs ?? r.lastActivityMs) + state.config.cohortRetentionMs;
}

// Nobody joined or everyone left: an open cohort lives the (short) idle TTL, not the retention (issue #12).
function idleTtlMs(state: SchedulerState): number {
  return Math.min(state.config.idleCohortTtlMs, state.config.cohortRetentionMs);
}

/** Handles up to one batch of due sweep entries; returns how many it took off the heap. */
export function sweep(state: SchedulerState, tx: CoreTx): number {
  const heap = state.sweepDeadlines;
  let taken = 0;
  for (let top = heap.peek(); top !== null && top.atMs <= tx.now && taken < state.config.sweepBatch; top = heap.peek()) {
    heap.pop(tx.journal);
    taken++;
    const entry = top.value;
    if (entry.kind === 'memo') {
      const { memo } = entry;
      if (state.memos.get(memo.memoKey) !== memo) continue; // replaced by a newer success, which has its own entry
      tx.journal.mapDelete(state.memos, memo.memoKey);
      tx.append({ table: 'memo.delete', memoKey: memo.memoKey });
      continue;
    }
    const { cohort } = entry;
    if (state.cohorts.get(cohort.id) !== cohort || state.cohortSweepAtMs.get(cohort) !== top.atMs) continue; // evicted, or re-armed since
    sweepCohort(state, tx, cohort);
  }
  return taken;
}

/** Whether due entries are left after a batch (the sweep continues on the next tick). */
export function sweepBacklog(state: SchedulerState, now: number): boolean {
  const top = state.sweepDeadlines.peek();
  return top !== null && top.atMs <= now;
}

function sweepCohort(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  const due = cohortSweepAtMs(state, cohort);
  if (tx.now < due) {
    state.armSweep(tx.journal, cohort, due);
    return;
  }
  if (state.peers.activeMembers(cohort) > 0) {
    // Members are active. An open cohort's last member leaving is activity, which pushes its idle
    // deadline past now + TTL; a resolved one is looked at again after a sweep interval.
    const later = cohort.record.status === 'open' ? idleTtlMs(state) : state.config.sweepIntervalMs;
    state.armSweep(tx.journal, cohort, tx.now + Math.max(1, later));
    return;
  }
  if (cohort.record.status === 'open') cohort.cancel(tx, 'abandoned');
  else evict(state, tx, cohort);
}

/** A resolved cohort leaves memory: its indexes, leases and peers (the database keeps it until --history-days). */
function evict(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  const j = tx.journal;
  j.mapDelete(state.cohorts, cohort.id);
  j.mapDelete(state.cohortSweepAtMs, cohort);
  j.setDelete(state.openCohorts, cohort);
  state.matcher.remove(j, cohort);
  untrack(state, j, cohort);
  for (const leaseId of cohort.leases.keys()) j.mapDelete(state.leaseOwners, leaseId);
  for (const peer of [...state.peers.members(cohort)]) state.peers.remove(j, peer);
}
