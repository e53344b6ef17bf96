import { describeLoss, describeStepFailure, isDeath, type AbortWhy, type LeaseEnd, type LeaseLossWhy, type StepFailCause } from './causes.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import { transitionLease } from './lease-state.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { LeaseRecord, StepRecord } from './records.js';
import type { PeerState, SchedulerState } from './scheduler-state.js';
import { transitionStep } from './step-status.js';

/**
 * The transitions of a cohort's steps and leases, which every handler uses:
 * grant a lease, end it (a report, a loss, an abort, its age), give the step
 * back, fail it for the cohort with everything that needs it. Reports
 * (`step.finished`) are handled top to bottom in step-finish.ts. See the
 * machines in step-status.ts and lease-state.ts.
 */

/**
 * Leases of a step that may end "built but not published" before such an end counts as a failed
 * attempt: a cache that rejects every write must not keep a step going round for ever.
 */
export const maxUnpublishedAttempts = 3;

/** Resolves a step as failed: live copies are aborted; the caller says who is told. */
export function markFailed(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, cause: StepFailCause): void {
  for (const lease of [...cohort.live(step.stepId)]) abortLease(state, tx, cohort, lease, 'cancelled');
  transitionStep(tx.journal, step, 'failed');
  tx.journal.set(step, { failCause: cause, resolvedAtMs: tx.now });
  cohort.count(tx.journal, -1, +1);
  tx.step(step);
}

/** Fails a step for its cohort, tells every member, and fails what is pending and needs it. */
export function failStep(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, cause: StepFailCause): void {
  markFailed(state, tx, cohort, step, cause);
  const reason = describeStepFailure(cause);
  tx.event(cohort.id, 'step.failed', { stepId: step.stepId, peerId: step.failPeerId, detail: reason });
  tx.stat('step.failed');
  state.broadcast(tx, cohort, {
    cohortId: cohort.id,
    stepId: step.stepId,
    state: 'failed',
    peerId: step.failPeerId,
    fromMemo: false,
    exitCode: step.failExitCode,
    ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
    cause: { kind: 'failed', cause },
  });
  for (const dependentId of cohort.dependents.get(step.stepId)!) {
    const dependent = cohort.steps.get(dependentId)!;
    if (dependent.status === 'pending') failStep(state, tx, cohort, dependent, { kind: 'need-failed', need: step.stepId });
  }
}

export function grant(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, peer: PeerState, backup: boolean): void {
  tx.journal.set(step, { attempts: step.attempts + 1 });
  const lease: LeaseRecord = {
    leaseId: state.ids.leaseId(),
    cohortId: cohort.id,
    stepId: step.stepId,
    peerId: peer.peerId,
    attempt: step.attempts,
    backup,
    startedAtMs: tx.now,
    endedAtMs: null,
    end: null,
  };
  if (step.status === 'pending') transitionStep(tx.journal, step, 'leased');
  state.addLease(tx.journal, cohort, lease);
  state.setWork(tx.journal, peer, { kind: 'running', leaseId: lease.leaseId });
  tx.step(step);
  tx.lease(lease);
  state.leaseAgeDeadlines.push(lease.startedAtMs + state.maxLeaseAgeMs(cohort, step.stepId), lease);
  tx.event(cohort.id, 'step.leased', { stepId: step.stepId, peerId: lease.peerId, detail: `attempt ${lease.attempt}${backup ? ', backup copy' : ''}` });
  tx.stat('step.assigned');
  if (peer.connId !== null) tx.emit({ kind: 'granted', connId: peer.connId, cohortId: cohort.id, stepId: step.stepId, leaseId: lease.leaseId, attempt: lease.attempt, backup });
}

/** Ends a live lease; its holder, if it still runs it, becomes idle. */
export function endLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, end: LeaseEnd): void {
  transitionLease(tx.journal, lease, end, tx.now);
  cohort.removeLive(tx.journal, lease);
  tx.lease(lease);
  const holder = state.peers.get(lease.peerId);
  if (holder && heldLeaseId(holder.work) === lease.leaseId) state.setWork(tx.journal, holder, idleWork);
}

/** Ends a live copy that is no longer wanted and tells its holder to stop. */
export function abortLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, why: AbortWhy): void {
  endLease(state, tx, cohort, lease, { kind: 'aborted', why });
  tx.event(cohort.id, 'lease.aborted', { stepId: lease.stepId, peerId: lease.peerId, detail: why });
  const connId = state.peers.get(lease.peerId)?.connId ?? null;
  if (connId !== null) tx.emit({ kind: 'abort', connId, stepId: lease.stepId, leaseId: lease.leaseId, why });
  tx.dirty.add(cohort);
}

export function abortOrphans(state: SchedulerState, tx: CoreTx, cohort: Cohort, stepId: string): void {
  for (const peer of state.currentMembers(cohort)) {
    if (peer.work.kind !== 'orphaned' || peer.work.stepId !== stepId) continue;
    if (peer.connId !== null) tx.emit({ kind: 'abort', connId: peer.connId, stepId, leaseId: peer.work.leaseId, why: 'superseded' });
    state.setWork(tx.journal, peer, idleWork);
  }
}

/**
 * The holder stopped running it: the lease ends; the step goes back to pending
 * unless another copy runs. Only a death (causes.ts `isDeath`) counts toward
 * `maxLostLeases`; a release by a live holder never fails the step.
 */
export function loseLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, why: LeaseLossWhy): void {
  endLease(state, tx, cohort, lease, { kind: 'lost', why });
  tx.event(cohort.id, 'lease.lost', { stepId: lease.stepId, peerId: lease.peerId, detail: describeLoss(why) });
  tx.stat(isDeath(why) ? 'lease.expired' : 'lease.released');
  const step = cohort.steps.get(lease.stepId)!;
  if (step.status === 'leased' && cohort.live(step.stepId).length === 0) returnToPending(state, tx, cohort, step, why);
  tx.dirty.add(cohort);
}

export function returnToPending(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, why: LeaseLossWhy): void {
  transitionStep(tx.journal, step, 'pending');
  tx.step(step);
  if (!isDeath(why)) return;
  tx.journal.set(step, { lostLeases: step.lostLeases + 1 });
  if (step.lostLeases >= state.config.maxLostLeases) failStep(state, tx, cohort, step, { kind: 'lost-too-often', lostLeases: step.lostLeases, last: why });
}

/**
 * A lease passed its max age (`now >= startedAtMs + maxLeaseAgeMs`) while its
 * holder, connected or in grace, never finished it: it ends (`aborted`, why
 * `max-age`), the holder is told to stop, and the step is leased again, to
 * another peer where there is one, with 4 × the time (so a step that truly
 * runs long finishes on a later lease). Not a death and not a failure: it
 * counts toward neither `maxLostLeases` nor `maxFailures`.
 */
export function expireLeaseAge(state: SchedulerState, tx: CoreTx, lease: LeaseRecord, limitMs: number): void {
  const cohort = state.cohorts.get(lease.cohortId)!;
  const step = cohort.steps.get(lease.stepId)!;
  abortLease(state, tx, cohort, lease, 'max-age');
  tx.event(cohort.id, 'lease.timed-out', { stepId: lease.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} ran ${tx.now - lease.startedAtMs} ms, past its max age of ${limitMs} ms; leasing the step again` });
  tx.stat('lease.timed-out');
  tx.journal.mapSet(cohort.leaseTimeouts, step.stepId, (cohort.leaseTimeouts.get(step.stepId) ?? 0) + 1);
  tx.journal.set(step, { failedOn: step.failedOn.includes(lease.peerId) ? step.failedOn : [...step.failedOn, lease.peerId] });
  tx.step(step);
  if (step.status === 'leased' && cohort.live(step.stepId).length === 0) transitionStep(tx.journal, step, 'pending');
}
