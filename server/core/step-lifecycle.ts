import { limits } from '../../shared/limits.js';
import { describeLoss, describeStepFailure, type AbortWhy, type LeaseEnd, type LeaseLossWhy, type StepFailCause } from './causes.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
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

export function onFinished(state: SchedulerState, tx: CoreTx, input: FinishedInput): void {
  const peer = state.peers.get(input.peerId);
  if (!peer || peer.connId !== input.connId) return; // a superseded connection; its socket is closing
  const lease = state.leases.get(input.leaseId);
  const refuse = (code: 'STALE_LEASE' | 'LEASE_NOT_HELD' | 'UNKNOWN_STEP', message: string): void =>
    tx.error(input.connId, { code, message, stepId: input.stepId, leaseId: input.leaseId });

  if (peer.work.kind === 'orphaned' && peer.work.leaseId === input.leaseId) state.setWork(tx.journal, peer, idleWork);
  const ownCohort = state.cohorts.get(peer.record.cohortId);
  if (ownCohort) tx.dirty.add(ownCohort);
  if (!lease) {
    refuse('STALE_LEASE', `lease ${input.leaseId} is unknown to the authority; the result was not recorded`);
    return;
  }
  if (lease.peerId !== input.peerId) {
    refuse('LEASE_NOT_HELD', `lease ${input.leaseId} belongs to another peer; the result was not recorded`);
    return;
  }
  if (lease.stepId !== input.stepId) {
    refuse('UNKNOWN_STEP', `lease ${input.leaseId} is for step "${lease.stepId}", not "${input.stepId}"`);
    return;
  }
  const cohort = state.cohorts.get(lease.cohortId);
  if (!cohort) {
    refuse('STALE_LEASE', `the cohort of lease ${input.leaseId} is closed; the result was not recorded`);
    return;
  }
  const step = cohort.steps.get(lease.stepId)!;

  if (lease.end === null) {
    endLease(state, tx, cohort, lease, input.ok ? { kind: 'succeeded' } : { kind: 'failed', exitCode: input.exitCode });
    if (input.ok) succeed(state, tx, cohort, step, lease, input.durationMs);
    else if (input.unpublished === true && step.attempts - step.failures <= maxUnpublishedAttempts) recordUnpublished(state, tx, cohort, step, lease, input.exitCode, input.logTail);
    else recordFailure(state, tx, cohort, step, lease, input.exitCode, input.logTail);
    return;
  }
  if (input.ok && !isResolved(step.status)) {
    // The lease was lost but the work was done, and nobody has finished the step since: it counts.
    tx.event(cohort.id, 'step.late-completion', { stepId: step.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} (${lease.end.kind})` });
    succeed(state, tx, cohort, step, lease, input.durationMs);
    return;
  }
  refuse(
    'STALE_LEASE',
    input.ok
      ? `lease ${input.leaseId} already ended (${lease.end.kind}) and step "${step.stepId}" is ${step.status}; this completion changed nothing`
      : `lease ${input.leaseId} already ended (${lease.end.kind}); its failure is not counted`,
  );
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
    tx.journal.mapSet(state.memos, key, memo);
    tx.append({ table: 'memo', row: memo });
  }
  state.broadcast(tx, cohort, { type: 'step.update', cohortId: cohort.id, stepId: step.stepId, state: 'succeeded', peerId: lease.peerId, fromMemo: false, durationMs });
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
  const reason = `built on ${lease.peerId} but not in the remote cache (--verify exit ${exitCode ?? 'none'}); leasing it again, on another peer when there is one`;
  tx.event(cohort.id, 'step.unpublished', { stepId: step.stepId, peerId: lease.peerId, detail: reason });
  if (cohort.live(step.stepId).length > 0) return; // another copy is still running
  transitionStep(tx.journal, step, 'pending');
  state.broadcast(tx, cohort, {
    type: 'step.update',
    cohortId: cohort.id,
    stepId: step.stepId,
    state: 'pending',
    peerId: lease.peerId,
    fromMemo: false,
    exitCode,
    ...(logTail === null ? {} : { logTail: logTail.slice(-limits.maxLogTailChars) }),
    reason,
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
    const reason = `attempt ${lease.attempt} failed on ${lease.peerId} with exit ${exitCode ?? 'none'}; retrying, on another peer when there is one`;
    tx.event(cohort.id, 'step.retry', { stepId: step.stepId, detail: reason });
    state.broadcast(tx, cohort, {
      type: 'step.update',
      cohortId: cohort.id,
      stepId: step.stepId,
      state: 'pending',
      peerId: lease.peerId,
      fromMemo: false,
      exitCode,
      ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
      reason,
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
    type: 'step.update',
    cohortId: cohort.id,
    stepId: step.stepId,
    state: 'failed',
    peerId: step.failPeerId,
    fromMemo: false,
    exitCode: step.failExitCode,
    ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
    reason,
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
  tx.journal.mapSet(state.leases, lease.leaseId, lease);
  cohort.addLive(tx.journal, lease);
  state.setWork(tx.journal, peer, { kind: 'running', leaseId: lease.leaseId });
  tx.step(step);
  tx.lease(lease);
  tx.event(cohort.id, 'step.leased', { stepId: step.stepId, peerId: lease.peerId, detail: `attempt ${lease.attempt}${backup ? ', backup copy' : ''}` });
  tx.stat('step.assigned');
  tx.send(peer.connId, { type: 'assign', cohortId: cohort.id, stepId: step.stepId, leaseId: lease.leaseId, attempt: lease.attempt, backup });
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
  tx.send(state.peers.get(lease.peerId)?.connId ?? null, { type: 'abort', stepId: lease.stepId, leaseId: lease.leaseId, reason: why });
  tx.dirty.add(cohort);
}

function abortOrphans(state: SchedulerState, tx: CoreTx, cohort: Cohort, stepId: string): void {
  for (const peer of state.currentMembers(cohort)) {
    if (peer.work.kind !== 'orphaned' || peer.work.stepId !== stepId) continue;
    tx.send(peer.connId, { type: 'abort', stepId, leaseId: peer.work.leaseId, reason: 'superseded' });
    state.setWork(tx.journal, peer, idleWork);
  }
}

/** The holder is gone: the lease ends; the step goes back to pending unless another copy runs. */
export function loseLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, why: LeaseLossWhy): void {
  endLease(state, tx, cohort, lease, { kind: 'lost', why });
  tx.event(cohort.id, 'lease.lost', { stepId: lease.stepId, peerId: lease.peerId, detail: describeLoss(why) });
  tx.stat('lease.expired');
  const step = cohort.steps.get(lease.stepId)!;
  if (step.status === 'leased' && cohort.live(step.stepId).length === 0) returnToPending(state, tx, cohort, step, why);
  tx.dirty.add(cohort);
}

export function returnToPending(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, why: LeaseLossWhy): void {
  tx.journal.set(step, { lostLeases: step.lostLeases + 1 });
  tx.step(step);
  transitionStep(tx.journal, step, 'pending');
  if (step.lostLeases >= state.config.maxLostLeases) failStep(state, tx, cohort, step, { kind: 'lost-too-often', lostLeases: step.lostLeases, last: why });
}
