import { limits } from '../../shared/limits.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { DurationRecord, LeaseOutcome, LeaseRecord, MemoRecord, StepRecord } from './records.js';
import type { FinishedInput, PeerState, SchedulerState } from './scheduler-state.js';
import { durationKey, memoKey } from './source-state.js';
import { isResolved, transitionStep } from './step-status.js';

/**
 * Steps and leases: completions (counted once, fenced when stale), success
 * (memo, recorded duration, other copies aborted), failure (retry, then failed
 * for the cohort with everything that needs it), grants and lost leases.
 * See the state diagram in step-status.ts and the invariants in scheduler.ts.
 */

export function onFinished(state: SchedulerState, tx: CoreTx, input: FinishedInput): void {
  const peer = state.peers.get(input.peerId);
  if (!peer || peer.connId !== input.connId) return; // a superseded connection; its socket is closing
  const lease = state.leases.get(input.leaseId);
  const refuse = (code: 'STALE_LEASE' | 'LEASE_NOT_HELD' | 'UNKNOWN_STEP', message: string): void =>
    tx.error(input.connId, { code, message, stepId: input.stepId, leaseId: input.leaseId });

  if (peer.orphan?.leaseId === input.leaseId) peer.orphan = null;
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
  if (peer.leaseId === lease.leaseId) peer.leaseId = null;

  if (lease.outcome === null) {
    endLease(state, tx, cohort, lease, input.ok ? 'succeeded' : 'failed');
    if (input.ok) succeed(state, tx, cohort, step, lease, input.durationMs);
    else recordFailure(state, tx, cohort, step, lease, input.exitCode, input.logTail);
    return;
  }
  if (input.ok && !isResolved(step.status)) {
    // The lease was lost but the work was done, and nobody has finished the step since: it counts.
    tx.event(cohort.id, 'step.late-completion', { stepId: step.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} (${lease.outcome})` });
    succeed(state, tx, cohort, step, lease, input.durationMs);
    return;
  }
  refuse(
    'STALE_LEASE',
    input.ok
      ? `lease ${input.leaseId} already ended (${lease.outcome}) and step "${step.stepId}" is ${step.status}; this completion changed nothing`
      : `lease ${input.leaseId} already ended (${lease.outcome}); its failure is not counted`,
  );
}

export function succeed(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, durationMs: number): void {
  transitionStep(step, 'succeeded');
  step.builtBy = lease.peerId;
  step.fromMemo = false;
  step.durationMs = durationMs;
  step.resolvedAtMs = tx.now;
  cohort.unresolved--;
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
    const memo: MemoRecord = {
      memoKey: key,
      stepId: step.stepId,
      cohortId: cohort.id,
      peerId: lease.peerId,
      durationMs,
      createdAtMs: tx.now,
      expiresAtMs: tx.now + state.config.memoTtlMs,
    };
    state.memos.set(key, memo);
    tx.append({ table: 'memo', row: memo });
  }
  state.broadcast(tx, cohort, { type: 'step.update', cohortId: cohort.id, stepId: step.stepId, state: 'succeeded', peerId: lease.peerId, fromMemo: false, durationMs });
}

function recordFailure(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, exitCode: number | null, logTail: string | null): void {
  step.failures++;
  if (!step.failedOn.includes(lease.peerId)) step.failedOn.push(lease.peerId);
  step.failPeerId = lease.peerId;
  step.failExitCode = exitCode;
  step.failLogTail = logTail === null ? null : logTail.slice(-limits.maxLogTailChars);
  tx.step(step);
  tx.event(cohort.id, 'step.attempt-failed', { stepId: step.stepId, peerId: lease.peerId, detail: `exit ${exitCode ?? 'none'}, attempt ${lease.attempt}` });
  if (cohort.live(step.stepId).length > 0) return; // another copy is still running
  if (step.failures >= state.config.maxFailures) {
    failStep(state, tx, cohort, step, `failed ${step.failures} times; last on ${lease.peerId} with exit ${exitCode ?? 'none'}`);
  } else {
    transitionStep(step, 'pending');
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
export function markFailed(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, reason: string): void {
  for (const lease of [...cohort.live(step.stepId)]) abortLease(state, tx, cohort, lease, 'cancelled');
  transitionStep(step, 'failed');
  step.failReason = reason;
  step.resolvedAtMs = tx.now;
  cohort.unresolved--;
  cohort.failedCount++;
  tx.step(step);
}

function failStep(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, reason: string): void {
  markFailed(state, tx, cohort, step, reason);
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
    if (dependent.status === 'pending') failStep(state, tx, cohort, dependent, `needs "${step.stepId}", which failed`);
  }
}

function recordDuration(state: SchedulerState, tx: CoreTx, cohort: Cohort, stepId: string, durationMs: number): void {
  const key = durationKey(cohort.record.repo, cohort.record.schema.id, stepId);
  const known = state.durations.get(key);
  const row: DurationRecord = known ?? { durationKey: key, avgMs: durationMs, samples: 0 };
  if (known) row.avgMs = state.config.durationAlpha * durationMs + (1 - state.config.durationAlpha) * row.avgMs;
  row.samples++;
  state.durations.set(key, row);
  tx.append({ table: 'duration', row: { ...row } });
}

export function grant(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, peer: PeerState, backup: boolean): void {
  step.attempts++;
  const lease: LeaseRecord = {
    leaseId: state.ids.leaseId(),
    cohortId: cohort.id,
    stepId: step.stepId,
    peerId: peer.record.peerId,
    attempt: step.attempts,
    backup,
    startedAtMs: tx.now,
    endedAtMs: null,
    outcome: null,
  };
  if (step.status === 'pending') transitionStep(step, 'leased');
  state.leases.set(lease.leaseId, lease);
  cohort.addLive(lease);
  peer.leaseId = lease.leaseId;
  peer.waiting = false;
  tx.step(step);
  tx.lease(lease);
  tx.event(cohort.id, 'step.leased', { stepId: step.stepId, peerId: lease.peerId, detail: `attempt ${lease.attempt}${backup ? ', backup copy' : ''}` });
  tx.stat('step.assigned');
  tx.send(peer.connId, { type: 'assign', cohortId: cohort.id, stepId: step.stepId, leaseId: lease.leaseId, attempt: lease.attempt, backup });
}

export function endLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, outcome: LeaseOutcome): void {
  lease.outcome = outcome;
  lease.endedAtMs = tx.now;
  cohort.removeLive(lease);
  tx.lease(lease);
  const holder = state.peers.get(lease.peerId);
  if (holder?.leaseId === lease.leaseId) holder.leaseId = null;
}

/** Ends a live copy that is no longer wanted and tells its holder to stop. */
function abortLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, reason: 'superseded' | 'cancelled'): void {
  endLease(state, tx, cohort, lease, 'aborted');
  tx.event(cohort.id, 'lease.aborted', { stepId: lease.stepId, peerId: lease.peerId, detail: reason });
  tx.send(state.peers.get(lease.peerId)?.connId ?? null, { type: 'abort', stepId: lease.stepId, leaseId: lease.leaseId, reason });
  tx.dirty.add(cohort);
}

function abortOrphans(state: SchedulerState, tx: CoreTx, cohort: Cohort, stepId: string): void {
  for (const peer of state.currentMembers(cohort)) {
    if (peer.orphan?.stepId !== stepId) continue;
    tx.send(peer.connId, { type: 'abort', stepId, leaseId: peer.orphan.leaseId, reason: 'superseded' });
    peer.orphan = null;
  }
}

/** The holder is gone: the lease ends; the step goes back to pending unless another copy runs. */
export function loseLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, lease: LeaseRecord, why: string): void {
  endLease(state, tx, cohort, lease, 'lost');
  tx.event(cohort.id, 'lease.lost', { stepId: lease.stepId, peerId: lease.peerId, detail: why });
  tx.stat('lease.expired');
  const step = cohort.steps.get(lease.stepId)!;
  if (step.status === 'leased' && cohort.live(step.stepId).length === 0) returnToPending(state, tx, cohort, step, why);
  tx.dirty.add(cohort);
}

export function returnToPending(state: SchedulerState, tx: CoreTx, cohort: Cohort, step: StepRecord, why: string): void {
  step.lostLeases++;
  tx.step(step);
  if (step.lostLeases >= state.config.maxLostLeases) {
    transitionStep(step, 'pending');
    failStep(state, tx, cohort, step, `lost its peer ${step.lostLeases} times (last: ${why}); the step may be killing its peer`);
  } else {
    transitionStep(step, 'pending');
  }
}
