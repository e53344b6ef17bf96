import { limits } from '../../shared/limits.js';
import { describeStepChangeCause } from './causes.js';
import { CohortLeases, maxUnpublishedAttempts } from './cohort-leases.js';
import type { CoreTx } from './core-tx.js';
import type { StepChangeCause } from './effects.js';
import type { FinishedInput } from './peer-sessions.js';
import type { PeerState } from './peer-table.js';
import type { DurationRecord, LeaseRecord, MemoRecord, StepRecord } from './records.js';
import { memoKey } from './source-state.js';
import { isResolved, transitionStep } from './step-status.js';

/**
 * What a cohort does with a report of one of its leases (a `step.finished`,
 * or a Task Director TASK_COMPLETE), top to bottom: the lease-side fencing,
 * the lease's end, then success (memo, the authority's own duration measure,
 * other copies aborted), a build that was not published (leased again), or a
 * failure (retry, or failed for the cohort with everything that needs it).
 * The connection side (which peer, which lease) is peer-sessions.ts
 * `finished`; settling the cohort afterwards is cohort.ts `settle`.
 */
export class CohortReports extends CohortLeases {
  /**
   * A peer reports one of this cohort's leases (the connection side was
   * fenced by peer-sessions.ts `finished`): the lease must be this peer's and
   * for this step; an ended lease counts only as a late success of an
   * unresolved step. Then the step succeeds or records a failure.
   */
  finish(tx: CoreTx, peer: PeerState, lease: LeaseRecord, input: FinishedInput): void {
    if (lease.peerId !== peer.peerId) {
      tx.refuse(input.connId, { kind: 'lease-not-held', leaseId: lease.leaseId, stepId: input.stepId });
      return;
    }
    if (lease.stepId !== input.stepId) {
      tx.refuse(input.connId, { kind: 'wrong-step', leaseId: input.leaseId, leaseStepId: lease.stepId, stepId: input.stepId });
      return;
    }
    const step = this.steps.get(lease.stepId)!;
    const durationMs = recordedDurationMs(input.durationMs, Math.max(0, tx.now - lease.startedAtMs), this.host.config.peerDurationSlackMs);

    if (lease.end === null) {
      this.endLease(tx, lease, input.ok ? { kind: 'succeeded' } : { kind: 'failed', exitCode: input.exitCode });
      if (input.ok) this.succeed(tx, step, lease, durationMs);
      else if (input.unpublished === true && step.attempts - step.failures <= maxUnpublishedAttempts) this.recordUnpublished(tx, step, lease, input.exitCode, input.logTail);
      else this.recordFailure(tx, step, lease, input.exitCode, input.logTail);
      return;
    }
    if (input.ok && !isResolved(step.status)) {
      // The lease was lost but the work was done, and nobody has finished the step since: it counts.
      tx.event(this.id, 'step.late-completion', { stepId: step.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} (${lease.end.kind})` });
      this.succeed(tx, step, lease, durationMs);
      return;
    }
    tx.refuse(input.connId, { kind: 'stale-lease', leaseId: lease.leaseId, stepId: input.stepId, why: 'ended', ok: input.ok, end: lease.end, stepStatus: step.status });
  }

  private succeed(tx: CoreTx, step: StepRecord, lease: LeaseRecord, durationMs: number): void {
    transitionStep(tx.journal, step, 'succeeded');
    tx.journal.set(step, { builtBy: lease.peerId, fromMemo: false, durationMs, resolvedAtMs: tx.now });
    this.count(tx.journal, -1, 0);
    tx.step(step);
    // A late completion's lease ended earlier (lost or aborted): its event is a row of its own.
    const endedNow = lease.end?.kind === 'succeeded' && lease.endedAtMs === tx.now;
    tx.event(this.id, 'step.succeeded', { stepId: step.stepId, peerId: lease.peerId, detail: `${durationMs} ms, attempt ${lease.attempt}`, ...(endedNow ? { leaseId: lease.leaseId } : {}) });
    tx.stat('step.succeeded');
    const others = this.live(step.stepId);
    if (others.length > 0) for (const other of [...others]) this.abortLease(tx, other, 'superseded');
    this.abortOrphans(tx, step.stepId);
    for (const dependentId of this.dependents.get(step.stepId)!) this.ready.offer(this.steps.get(dependentId)!);
    this.recordDuration(tx, step.stepId, durationMs);
    const builder = this.host.peers.get(lease.peerId);
    // No memo without an exact source state (memoKey is null without a base sha): no key made for it.
    const key = builder && builder.record.registration.baseSha !== null ? memoKey(builder.record.registration, this.targetOf(step.stepId)) : null;
    if (key !== null) {
      const memo: MemoRecord = Object.freeze({
        memoKey: key,
        stepId: step.stepId,
        cohortId: this.id,
        peerId: lease.peerId,
        durationMs,
        createdAtMs: tx.now,
        expiresAtMs: tx.now + this.host.config.memoTtlMs,
      });
      this.host.putMemo(tx.journal, memo);
      tx.append({ table: 'memo', row: memo });
    }
    this.broadcast(tx, { cohortId: this.id, stepId: step.stepId, state: 'succeeded', peerId: lease.peerId, fromMemo: false, durationMs });
  }

  /**
   * Verified completion: the step was built but its result is not in the remote cache. Not a build
   * failure (`failures` unchanged); the step is leased again, to another peer where there is one
   * (the builder joins `failedOn`, which the picker avoids while someone else could take it).
   */
  private recordUnpublished(tx: CoreTx, step: StepRecord, lease: LeaseRecord, exitCode: number | null, logTail: string | null): void {
    tx.journal.set(step, { failedOn: step.failedOn.includes(lease.peerId) ? step.failedOn : [...step.failedOn, lease.peerId] });
    tx.step(step);
    const cause = { kind: 'unpublished', peerId: lease.peerId, exitCode } as const;
    tx.event(this.id, 'step.unpublished', { stepId: step.stepId, peerId: lease.peerId, detail: describeStepChangeCause(cause) });
    if (this.live(step.stepId).length > 0) return; // another copy is still running
    this.reopenAndTell(tx, step, lease.peerId, exitCode, logTail === null ? null : logTail.slice(-limits.maxLogTailChars), cause);
  }

  private recordFailure(tx: CoreTx, step: StepRecord, lease: LeaseRecord, exitCode: number | null, logTail: string | null): void {
    tx.journal.set(step, {
      failures: step.failures + 1,
      failedOn: step.failedOn.includes(lease.peerId) ? step.failedOn : [...step.failedOn, lease.peerId],
      failPeerId: lease.peerId,
      failExitCode: exitCode,
      failLogTail: logTail === null ? null : logTail.slice(-limits.maxLogTailChars),
    });
    tx.step(step);
    tx.event(this.id, 'step.attempt-failed', { stepId: step.stepId, peerId: lease.peerId, detail: `exit ${exitCode ?? 'none'}, attempt ${lease.attempt}`, leaseId: lease.leaseId });
    if (this.live(step.stepId).length > 0) return; // another copy is still running
    if (step.failures >= this.host.config.maxFailures) {
      this.failStep(tx, step, { kind: 'attempts-exhausted', failures: step.failures, peerId: lease.peerId, exitCode });
      return;
    }
    const cause = { kind: 'retrying', attempt: lease.attempt, peerId: lease.peerId, exitCode } as const;
    tx.event(this.id, 'step.retry', { stepId: step.stepId, detail: describeStepChangeCause(cause) });
    this.reopenAndTell(tx, step, lease.peerId, exitCode, step.failLogTail || null, cause);
  }

  /** The step goes back to pending (it is leased again) and every member hears why. */
  private reopenAndTell(tx: CoreTx, step: StepRecord, peerId: string, exitCode: number | null, logTail: string | null, cause: StepChangeCause): void {
    this.toPending(tx, step);
    this.broadcast(tx, {
      cohortId: this.id,
      stepId: step.stepId,
      state: 'pending',
      peerId,
      fromMemo: false,
      exitCode,
      ...(logTail === null ? {} : { logTail }),
      cause,
    });
  }

  private recordDuration(tx: CoreTx, stepId: string, durationMs: number): void {
    const key = this.durationKeyOf(stepId);
    const known = this.host.durations.get(key);
    const alpha = this.host.config.durationAlpha;
    const row: DurationRecord = Object.freeze({
      durationKey: key,
      avgMs: known ? alpha * durationMs + (1 - alpha) * known.avgMs : durationMs,
      samples: (known?.samples ?? 0) + 1,
    });
    tx.journal.mapSet(this.host.durations, key, row);
    tx.append({ table: 'duration', row });
  }
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
