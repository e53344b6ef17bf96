import { defineMachine } from '../../shared/state-machine.js';
import { leaseOutcomeOf, type LeaseEnd } from './causes.js';
import type { Journal } from './journal.js';
import type { LeaseRecord } from './records.js';

/**
 * Lease lifecycle. A lease's state is derived from its `end` (null: live).
 *
 * States: live, succeeded, failed, lost, aborted.
 * Edges:
 *   live -> succeeded  its holder reported success
 *   live -> failed     its holder reported failure (exit code in the end)
 *   live -> lost       its holder went away (grace expired, bye, resumed without it, restart)
 *   live -> aborted    another copy won, or the cohort was cancelled
 * Ended states are final. Invariants: a live lease's holder is connected or in
 * grace and holds it (its work state is `running` it); a step's live leases
 * number at most two, the second a backup; a lease's `endedAtMs` is set iff it ended.
 */
export const leaseState = Object.freeze({
  live: 'live',
  succeeded: 'succeeded',
  failed: 'failed',
  lost: 'lost',
  aborted: 'aborted',
});
export type LeaseState = (typeof leaseState)[keyof typeof leaseState];

export const leaseMachine = defineMachine<LeaseState>('lease', leaseState, {
  live: ['succeeded', 'failed', 'lost', 'aborted'],
  succeeded: [],
  failed: [],
  lost: [],
  aborted: [],
});

export function leaseStateOf(lease: Pick<LeaseRecord, 'end'>): LeaseState {
  return lease.end === null ? 'live' : leaseOutcomeOf(lease.end);
}

/** Ends a live lease (journaled), or throws `IllegalTransitionError` when it already ended. */
export function transitionLease(journal: Journal, lease: LeaseRecord, end: LeaseEnd, nowMs: number): void {
  const from = leaseStateOf(lease);
  const to = leaseOutcomeOf(end);
  if (!leaseMachine.can(from, to)) leaseMachine.check(`lease ${lease.leaseId}`, from, to);
  journal.field(lease, 'end', end);
  journal.field(lease, 'endedAtMs', nowMs);
}
