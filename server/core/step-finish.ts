import { limits } from '../../shared/limits.js';
import { describeStepChangeCause } from './causes.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { Refusal } from './effects.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { DurationRecord, LeaseRecord, MemoRecord, StepRecord } from './records.js';
import type { FinishedInput, SchedulerState } from './scheduler-state.js';
import { durationKey, memoKey } from './source-state.js';
import { abortLease, abortOrphans, endLease, failStep, maxUnpublishedAttempts } from './step-lifecycle.js';
import { isResolved, transitionStep } from './step-status.js';

/**
 * A `step.finished` (or a Task Director TASK_COMPLETE), top to bottom:
 * fencing (`onFinished`), then success (`succeed`: memo, the authority's
 * duration, other copies aborted), a build that was not published
 * (`recordUnpublished`) or a failure (`recordFailure`: retry, or failed for
 * the cohort). The step and lease transitions they use are in
 * step-lifecycle.ts; `settle` (cohort-lifecycle.ts) runs after, giving idle
 * peers work and completing the cohort.
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

