import { limits } from '../../shared/limits.js';
import { describeLoss, describeStepChangeCause, describeStepFailure, isDeath, type AbortWhy, type LeaseEnd, type LeaseLossWhy, type StepFailCause } from './causes.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { Refusal } from './effects.js';
import { transitionLease } from './lease-state.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { DurationRecord, LeaseRecord, MemoRecord, StepRecord } from './records.js';
import type { FinishedInput, PeerState, SchedulerState } from './scheduler-state.js';
import { durationKey, memoKey } from './source-state.js';
import { isResolved, transitionStep } from './step-status.js';

/**
 * Steps and leases: completions (counted once, fenced when stale), success
 * (memo, recorded duration, other copies aborted), failure (retry, then failed
 * for the cohort with everything that needs it), grants and lost leases.
 * See the machines in step-status.ts and lease-state.ts.
 */

/**
 * A peer reports a step: fenced (the lease must be this peer's and for this
 * step; an ended lease counts only as a late success of an unresolved step),
 * then the step succeeds or records a failure. A report naming no lease (Task
 * Director) is for the lease the peer holds.
 */
export function onFinished(state: SchedulerState, tx: CoreTx, input: FinishedInput): void {
  if (state.superseded.has(input.connId)) return; // a replaced connection; its socket is closing
  const refuse = (refusal: Refusal): void => tx.refuse(input.connId, refusal);
  const peer = state.connections.get(input.connId);
  if (!peer) {
    refuse({ kind: 'not-joined' });
    return;
  }
  const ownCohort = state.cohorts.get(peer.record.cohortId);
  if (ownCohort) tx.dirty.add(ownCohort);

  const heldId = heldLeaseId(peer.work);
  if (input.leaseId === null && heldId === null) {
    refuse({ kind: 'no-lease-held', stepId: input.stepId });
    return;
  }
  const leaseId = input.leaseId ?? heldId!;
  if (peer.work.kind === 'orphaned' && peer.work.leaseId === leaseId) state.setWork(tx.journal, peer, idleWork);
  const lease = state.leases.get(leaseId);
  if (!lease) {
    refuse({ kind: 'stale-lease', leaseId, stepId: input.stepId, why: 'unknown', ok: input.ok });
    return;
  }
  if (lease.peerId !== peer.peerId) {
    refuse({ kind: 'lease-not-held', leaseId, stepId: input.stepId });
    return;
  }
  if (lease.stepId !== input.stepId) {
    refuse({ kind: 'wrong-step', leaseId: input.leaseId, leaseStepId: lease.stepId, stepId: input.stepId });
    return;
  }
  const cohort = state.cohorts.get(lease.cohortId);
  if (!cohort) {
    refuse({ kind: 'stale-lease', leaseId, stepId: input.stepId, why: 'cohort-closed', ok: input.ok });
    return;
  }
  const step = cohort.steps.get(lease.stepId)!;
  const durationMs = recordedDurationMs(input.durationMs, Math.max(0, tx.now - lease.startedAtMs), state.config.peerDurationSlackMs);

  if (lease.end === null) {
    endLease(state, tx, cohort, lease, input.ok ? { kind: 'succeeded' } : { kind: 'failed', exitCode: input.exitCode });
    if (input.ok) succeed(state, tx, cohort, step, lease, durationMs);
    else if (input.unpublished === true && step.attempts - step.failures <= maxUnpublishedAttempts) recordUnpublished(state, tx, cohort, step, lease, input.exitCode, input.logTail);
    else recordFailure(state, tx, cohort, step, lease, input.exitCode, input.logTail);
    return;
  }
  if (input.ok && !isResolved(step.status)) {
    // The lease was lost but the work was done, and nobody has finished the step since: it counts.
    tx.event(cohort.id, 'step.late-completion', { stepId: step.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} (${lease.end.kind})` });
    succeed(state, tx, cohort, step, lease, durationMs);
    return;
  }
  refuse({ kind: 'stale-lease', leaseId, stepId: input.stepId, why: 'ended', ok: input.ok, end: lease.end, stepStatus: step.status });
}

/**
 * The duration recorded for a completion: the authority's own measure (lease
 * start to completion, `measuredMs`), or the peer's figure when it lies within
 * it: no longer than the measure (the peer cannot have run longer than it
 * held the lease) and no shorter than the measure minus `slackMs` (frame
 * transit and start-up), nor than half of it. So a peer reporting 0 ms or
 * 10⁹ ms cannot skew estimates, priorities or straggler backups.
 */
export function recordedDurationMs(peerMs: number | null, measuredMs: number, slackMs: number): number {
  if (peerMs === null) return measuredMs;
  const lowest = measuredMs - Math.min(slackMs, Math.floor(measuredMs / 2));
  return Math.min(measuredMs, Math.max(lowest, Math.round(peerMs)));
}

export function succeed(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, durationMs: number): void {
  transitionStep(tx.journal, step, 'succeeded');
  tx.journal.set(step, { builtBy: lease.peerId, fromMemo: false, durationMs, resolvedAtMs: tx.now });
  cohort.count(tx.journal, -1, 0);
  tx.step(step);
  tx.append({ table: 'success', cohortId: cohort.id, stepId: step.stepId, leaseId: lease.leaseId, peerId: lease.peerId, atMs: tx.now });
  tx.event(cohort.id, 'step.succeeded', { stepId: step.stepId, peerId: lease.peerId, detail: `${durationMs} ms, attempt ${lease.attempt}` });
  tx.stat('step.succeeded');
  for (const other of [...cohort.live(step.stepId)]) abortLease(state, tx, cohort, other, 'superseded');
  abortOrphans(state, tx, cohort, step.stepId);
  recordDuration(state, tx, cohort, step.stepId, durationMs);
  const builder = state.peers.get(lease.peerId);
  const key = builder ? memoKey(builder.record.registration, cohort.targetOf(step.stepId)) : null;
  if (key !== null) {
    const memo: MemoRecord = Object.freeze({
      memoKey: key,
      stepId: step.stepId,
      cohortId: cohort.id,
      peerId: lease.peerId,
      durationMs,
      createdAtMs: tx.now,
      expiresAtMs: tx.now + state.config.memoTtlMs,
    });
    state.putMemo(tx.journal, memo);
    tx.append({ table: 'memo', row: memo });
  }
  state.broadcast(tx, cohort, { cohortId: cohort.id, stepId: step.stepId, state: 'succeeded', peerId: lease.peerId, fromMemo: false, durationMs });
}

/**
 * Leases of a step that may end "built but not published" before such an end counts as a failed
 * attempt: a cache that rejects every write must not keep a step going round for ever.
 */
export const maxUnpublishedAttempts = 3;

/**
 * Verified completion: the step was built but its result is not in the remote cache. Not a build
 * failure (`failures` unchanged); the step is leased again, to another peer where there is one
 * (the builder joins `failedOn`, which the picker avoids while someone else could take it).
 */
function recordUnpublished(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, exitCode: number | null, logTail: string | null): void {
  tx.journal.set(step, { failedOn: step.failedOn.includes(lease.peerId) ? step.failedOn : [...step.failedOn, lease.peerId] });
  tx.step(step);
  const cause = { kind: 'unpublished', peerId: lease.peerId, exitCode } as const;
  tx.event(cohort.id, 'step.unpublished', { stepId: step.stepId, peerId: lease.peerId, detail: describeStepChangeCause(cause) });
  if (cohort.live(step.stepId).length > 0) return; // another copy is still running
  transitionStep(tx.journal, step, 'pending');
  state.broadcast(tx, cohort, {
    cohortId: cohort.id,
    stepId: step.stepId,
    state: 'pending',
    peerId: lease.peerId,
    fromMemo: false,
    exitCode,
    ...(logTail === null ? {} : { logTail: logTail.slice(-limits.maxLogTailChars) }),
    cause,
  });
}

function recordFailure(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, exitCode: number | null, logTail: string | null): void {
  tx.journal.set(step, {
    failures: step.failures + 1,
    failedOn: step.failedOn.includes(lease.peerId) ? step.failedOn : [...step.failedOn, lease.peerId],
    failPeerId: lease.peerId,
    failExitCode: exitCode,
    failLogTail: logTail === null ? null : logTail.slice(-limits.maxLogTailChars),
  });
  tx.step(step);
  tx.event(cohort.id, 'step.attempt-failed', { stepId: step.stepId, peerId: lease.peerId, detail: `exit ${exitCode ?? 'none'}, attempt ${lease.attempt}` });
  if (cohort.live(step.stepId).length > 0) return; // another copy is still running
  if (step.failures >= state.config.maxFailures) {
    failStep(state, tx, cohort, step, { kind: 'attempts-exhausted', failures: step.failures, peerId: lease.peerId, exitCode });
  } else {
    transitionStep(tx.journal, step, 'pending');
    const cause = { kind: 'retrying', attempt: lease.attempt, peerId: lease.peerId, exitCode } as const;
    tx.event(cohort.id, 'step.retry', { stepId: step.stepId, detail: describeStepChangeCause(cause) });
    state.broadcast(tx, cohort, {
      cohortId: cohort.id,
      stepId: step.stepId,
      state: 'pending',
      peerId: lease.peerId,
      fromMemo: false,
      exitCode,
      ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
      cause,
    });
  }
}

/** Resolves a step as failed: live copies are aborted; the caller says who is told. */
export function markFailed(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, cause: StepFailCause): void {
  for (const lease of [...cohort.live(step.stepId)]) abortLease(state, tx, cohort, lease, 'cancelled');
  transitionStep(tx.journal, step, 'failed');
  tx.journal.set(step, { failCause: cause, resolvedAtMs: tx.now });
  cohort.count(tx.journal, -1, +1);
  tx.step(step);
}

/** Fails a step for its cohort, tells every member, and fails what is pending and needs it. */
function failStep(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, cause: StepFailCause): void {
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

function recordDuration(state: SchedulerState, tx: CoreTx, cohort: Cohort, stepId: string, durationMs: number): void {
  const key = durationKey(cohort.record.repo, cohort.record.schema.id, stepId);
  const known = state.durations.get(key);
  const alpha = state.config.durationAlpha;
  const row: DurationRecord = Object.freeze({
    durationKey: key,
    avgMs: known ? alpha * durationMs + (1 - alpha) * known.avgMs : durationMs,
    samples: (known?.samples ?? 0) + 1,
  });
  tx.journal.mapSet(state.durations, key, row);
  tx.append({ table: 'duration', row });
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
function abortLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, why: AbortWhy): void {
  endLease(state, tx, cohort, lease, { kind: 'aborted', why });
  tx.event(cohort.id, 'lease.aborted', { stepId: lease.stepId, peerId: lease.peerId, detail: why });
  const connId = state.peers.get(lease.peerId)?.connId ?? null;
  if (connId !== null) tx.emit({ kind: 'abort', connId, stepId: lease.stepId, leaseId: lease.leaseId, why });
  tx.dirty.add(cohort);
}

function abortOrphans(state: SchedulerState, tx: CoreTx, cohort: Cohort, stepId: string): void {
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
