import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { SchedulerState } from './scheduler-state.js';
import { stragglerAtMs } from './step-picker.js';

/**
 * Straggler backups as deadlines in a min-heap (`state.stragglerDeadlines`),
 * so neither a tick nor the next-deadline question looks at cohorts nobody
 * waits in (issue 10, item 7; DESIGN §11).
 *
 * An entry names a live lease. It is armed when the lease is granted while a
 * peer of its cohort waits, for every live lease of a cohort when one of its
 * peers starts waiting, and for every live lease on restore (a backup only
 * matters to a waiting peer; with nobody waiting an entry would be dropped when
 * it came up, so a grant then arms none: one heap push and pop less per
 * assignment, issue 17). When an entry
 * comes up it is checked against the present (lazy validation):
 * - the lease ended, is no longer the step's only copy, or its cohort was
 *   resolved or evicted: dropped;
 * - nobody in its cohort waits: dropped (the next `wait` re-arms it);
 * - the backup time moved (a new recorded estimate): re-armed at the new time;
 * - the estimate is still the default guess (no backup is started on a
 *   guess): checked again one default-estimate threshold later, so a
 *   duration recorded meanwhile is noticed;
 * - due: the cohort is dispatched, which starts the backup (step-picker.ts).
 */
export interface StragglerEntry {
  readonly cohort: Cohort;
  readonly leaseId: string;
}

/** Arms an entry for every live lease of the cohort that may get a backup copy (a peer of it starts waiting). */
export function armStragglers(state: SchedulerState, cohort: Cohort): void {
  if (state.config.stragglerFactor <= 0 || cohort.record.status !== 'open') return;
  for (const [, live] of cohort.liveLeases) if (live.length === 1) armStraggler(state, cohort, live[0]!.leaseId);
}

/** Arms an entry for one lease (granted or restored), if it may get a backup copy. */
export function armStraggler(state: SchedulerState, cohort: Cohort, leaseId: string): void {
  if (state.config.stragglerFactor <= 0) return;
  const check = backupCheck(state, cohort, leaseId, state.lastNow);
  if (check !== null) state.stragglerDeadlines.push(check.atMs, { cohort, leaseId });
}

/**
 * When the lease's backup may start, or, while its estimate is only the
 * default guess, when to look again (`guessed`); null when it can never get one.
 */
function backupCheck(state: SchedulerState, cohort: Cohort, leaseId: string, now: number): { atMs: number; guessed: boolean } | null {
  const lease = cohort.leases.get(leaseId);
  if (!lease || lease.end !== null) return null;
  const step = cohort.steps.get(lease.stepId);
  const live = cohort.live(lease.stepId);
  if (!step || live.length !== 1 || live[0] !== lease) return null;
  const ctx = state.pickContext(now);
  const at = stragglerAtMs(ctx, cohort, step);
  if (at !== null) return { atMs: at, guessed: false };
  if (!ctx.backupCapable(lease.peerId) || ctx.estimateKnown(cohort, step.stepId)) return null;
  const guessMs = Math.max(state.config.stragglerFactor * state.config.defaultEstimateMs, state.config.stragglerMinMs);
  const first = lease.startedAtMs + guessMs;
  return { atMs: first > now ? first : now + guessMs, guessed: true };
}

type Verdict = { readonly kind: 'drop' } | { readonly kind: 'due' } | { readonly kind: 'later'; readonly atMs: number };

function judge(state: SchedulerState, entry: StragglerEntry, now: number): Verdict {
  const { cohort } = entry;
  if (state.cohorts.get(cohort.id) !== cohort || cohort.record.status !== 'open' || !state.peers.hasWaitingMember(cohort)) return { kind: 'drop' };
  const check = backupCheck(state, cohort, entry.leaseId, now);
  if (check === null) return { kind: 'drop' };
  return !check.guessed && check.atMs <= now ? { kind: 'due' } : { kind: 'later', atMs: check.atMs };
}

/** A tick: dispatches the cohorts whose straggler deadline has come (they start the backup). */
export function fireStragglers(state: SchedulerState, tx: CoreTx): void {
  const heap = state.stragglerDeadlines;
  for (let top = heap.peek(); top !== null && top.atMs <= tx.now; top = heap.peek()) {
    heap.pop(tx.journal);
    const verdict = judge(state, top.value, tx.now);
    if (verdict.kind === 'due') tx.dirty.add(top.value.cohort);
    else if (verdict.kind === 'later') heap.push(verdict.atMs, top.value);
  }
}

/**
 * The earliest straggler deadline that still matters, or null. Entries that
 * no longer matter are dropped, ones that moved are re-armed (outside an
 * input: a push is never undone, a stale entry is dropped when it comes up).
 */
export function nextStragglerAtMs(state: SchedulerState): number | null {
  const heap = state.stragglerDeadlines;
  for (let top = heap.peek(); top !== null; top = heap.peek()) {
    const verdict = judge(state, top.value, state.lastNow);
    if (verdict.kind === 'due') return Math.min(top.atMs, state.lastNow);
    if (verdict.kind === 'later' && verdict.atMs === top.atMs) return top.atMs;
    heap.pop(null);
    if (verdict.kind === 'later') heap.push(verdict.atMs, top.value);
  }
  return null;
}
