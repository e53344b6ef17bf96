import { limits } from '../../shared/limits.js';
import { describeCancel, type CancelledBy, type CohortOutcome } from './causes.js';
import type { Cohort } from './cohort.js';
import { transitionCohort } from './cohort-status.js';
import type { CoreTx } from './core-tx.js';
import { doneWork, waitingWork } from './peer-work.js';
import type { StepRecord } from './records.js';
import type { PeerState, SchedulerState } from './scheduler-state.js';
import { canRunSomeUnresolved, describeRelease, labelsOf, resolveUnshared } from './peer-labels.js';
import { grant, markFailed } from './step-lifecycle.js';
import { DispatchPlan } from './step-picker.js';
import { isResolved, transitionStep } from './step-status.js';
import { trackOpen } from './source-quota.js';
import { cohortSecondsSaved, peerSummary } from './summary.js';

/**
 * Cohorts as a whole: after every input, complete the resolved ones and give
 * idle peers work or a `wait`; admin cancel and retry (retention sweeps: retention-sweep.ts).
 * See the machine in cohort-status.ts.
 */

/** After every input: complete cohorts that are resolved, give idle peers work or a `wait`. */
export function settle(state: SchedulerState, tx: CoreTx): void {
  for (const cohort of tx.dirty) {
    if (cohort.record.lastActivityMs !== tx.now) {
      tx.journal.set(cohort.record, { lastActivityMs: tx.now });
      tx.cohort(cohort.record);
    }
    if (cohort.record.status !== 'open') continue;
    if (cohort.unresolved === 0) completeCohort(state, tx, cohort);
    // Every member has left on purpose (bye, or closed after it was done): nobody will finish it, so it
    // ends now as abandoned instead of staying open for the idle-cohort TTL (and in taskshard_cohorts_open).
    // A member that is gone (its grace ran out) may come back, as a CI retry does: that keeps it open.
    else if (everyMemberLeft(state, cohort)) cancelCohort(state, tx, cohort, 'abandoned');
    else dispatch(state, tx, cohort);
  }
}

function everyMemberLeft(state: SchedulerState, cohort: Cohort): boolean {
  let members = 0;
  for (const peer of state.currentMembers(cohort)) {
    if (peer.record.status !== 'left') return false;
    members++;
  }
  return members > 0;
}

/**
 * Gives idle peers work or a `wait`. Where steps require labels (peer-labels.ts),
 * a peer that can run none of the unresolved steps is released (`complete` now)
 * instead of waiting, and once nothing runs, labelled steps no connected member
 * can run are resolved `unshared` (then the cohort completes, or peers are told anew).
 */
export function dispatch(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  if (state.draining) return;
  const idle: PeerState[] = [];
  for (const peer of state.currentMembers(cohort)) {
    if (peer.record.status !== 'connected' || (peer.work.kind !== 'idle' && peer.work.kind !== 'waiting')) continue;
    idle.push(peer);
  }
  const unassigned: PeerState[] = [];
  if (idle.length > 0) {
    const plan = new DispatchPlan(state.pickContext(tx.now), cohort);
    for (const peer of idle) {
      const choice = plan.take(peer.peerId, labelsOf(peer));
      if (choice) grant(state, tx, cohort, choice.step, peer, choice.backup);
      else unassigned.push(peer);
    }
  }
  // Before anyone is released, so every peer still here hears which steps nobody could build.
  if (resolveUnshared(state, tx, cohort) && cohort.unresolved === 0) {
    completeCohort(state, tx, cohort);
    return;
  }
  for (const peer of unassigned) {
    if (cohort.hasRequirements && !canRunSomeUnresolved(cohort, labelsOf(peer))) {
      tx.event(cohort.id, 'peer.released', { peerId: peer.peerId, detail: describeRelease(cohort, labelsOf(peer)) });
      sendComplete(state, tx, cohort, peer);
    } else if (peer.work.kind !== 'waiting') {
      state.setWork(tx.journal, peer, waitingWork);
      if (peer.connId !== null) tx.emit({ kind: 'wait', connId: peer.connId, ...waitFor(cohort, tx.now) });
    }
  }
}

/** What a waiting peer is told: each live lease with its holder and its age at `nowMs`. */
function waitFor(cohort: Cohort, nowMs: number): { cohortId: string; running: { stepId: string; peerId: string; heldMs: number }[]; unresolved: number } {
  const running: { stepId: string; peerId: string; heldMs: number }[] = [];
  for (const [stepId, live] of cohort.liveLeases) {
    for (const lease of live) if (running.length < limits.maxWaitEntries) running.push({ stepId, peerId: lease.peerId, heldMs: Math.max(0, nowMs - lease.startedAtMs) });
  }
  return { cohortId: cohort.id, running, unresolved: cohort.unresolved };
}

function completeCohort(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  const outcome: CohortOutcome = cohort.failedCount > 0 ? { kind: 'failed', failedSteps: cohort.failedCount } : { kind: 'succeeded' };
  const saved = cohortSecondsSaved(cohort, (c, s) => state.estimateMs(c, s));
  transitionCohort(tx.journal, cohort.record, 'complete');
  tx.journal.set(cohort.record, { resolvedAtMs: tx.now, outcome, secondsSaved: saved });
  state.refile(tx.journal, cohort);
  tx.cohort(cohort.record);
  tx.event(cohort.id, 'cohort.complete', { detail: `${outcome.kind}, ${saved} s saved` });
  tx.stat('seconds.saved', saved);
  completeConnectedPeers(state, tx, cohort);
}

/** `complete` to every connected member not told yet (the others get it when they resume or join). */
function completeConnectedPeers(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  for (const peer of state.currentMembers(cohort)) if (peer.record.status === 'connected' && peer.work.kind !== 'done') sendComplete(state, tx, cohort, peer);
}

/**
 * Tells a peer `complete` with its summary. In an open cohort (a peer released because it can run
 * none of the unresolved steps) the outcome is what it is so far: failed if a step failed, else succeeded.
 */
export function sendComplete(state: SchedulerState, tx: CoreTx, cohort: Cohort, peer: PeerState): void {
  const open = cohort.record.status === 'open';
  const outcome: CohortOutcome | null = open ? (cohort.failedCount > 0 ? { kind: 'failed', failedSteps: cohort.failedCount } : { kind: 'succeeded' }) : cohort.record.outcome;
  if (outcome === null) throw new Error(`cohort ${cohort.id} is ${cohort.record.status} without an outcome`);
  state.setWork(tx.journal, peer, doneWork);
  const summary = peerSummary(cohort, peer.peerId, (c, s) => state.estimateMs(c, s), { joinedAtMs: peer.record.joinedAtMs, nowMs: tx.now }, labelsOf(peer));
  if (peer.connId !== null) tx.emit({ kind: 'complete', connId: peer.connId, cohortId: cohort.id, outcome, summary });
  if (outcome.kind !== 'cancelled') {
    tx.stat('runner.spent', summary.spentSec ?? 0);
    tx.stat('runner.alone', summary.aloneSec ?? 0);
  }
}

export function onCancel(state: SchedulerState, tx: CoreTx, cohortId: string): void {
  const cohort = state.cohorts.get(cohortId);
  if (!cohort) {
    tx.admin = { ok: false, status: 404, code: 'NOT_FOUND', message: `no open or recent cohort ${cohortId}` };
    return;
  }
  if (cohort.record.status !== 'open') {
    tx.admin = { ok: false, status: 409, code: 'NOT_OPEN', message: `cohort ${cohortId} is already ${cohort.record.status}` };
    return;
  }
  cancelCohort(state, tx, cohort, 'admin');
  tx.admin = { ok: true };
}

export function cancelCohort(state: SchedulerState, tx: CoreTx, cohort: Cohort, by: CancelledBy): void {
  const outcome: CohortOutcome = { kind: 'cancelled', by };
  transitionCohort(tx.journal, cohort.record, 'cancelled');
  tx.journal.set(cohort.record, { resolvedAtMs: tx.now, outcome });
  for (const step of cohort.ordered) if (!isResolved(step.status)) markFailed(state, tx, cohort, step, { kind: 'cohort-cancelled', by });
  state.refile(tx.journal, cohort);
  tx.cohort(cohort.record);
  tx.event(cohort.id, 'cohort.cancelled', { detail: describeCancel(by) });
  completeConnectedPeers(state, tx, cohort);
}

export function onRetry(state: SchedulerState, tx: CoreTx, cohortId: string, stepId: string): void {
  const cohort = state.cohorts.get(cohortId);
  const step = cohort?.steps.get(stepId);
  if (!cohort || !step) {
    tx.admin = { ok: false, status: 404, code: 'NOT_FOUND', message: cohort ? `cohort ${cohortId} has no step "${stepId}"` : `no open or recent cohort ${cohortId}` };
    return;
  }
  if (cohort.record.status === 'cancelled' || step.status !== 'failed') {
    const why = cohort.record.status === 'cancelled' ? `cohort ${cohortId} is cancelled` : `step "${stepId}" is ${step.status}; only a failed step can be retried`;
    tx.admin = { ok: false, status: 409, code: 'NOT_FAILED', message: why };
    return;
  }
  const failedNeed = firstFailedNeed(cohort, stepId);
  if (failedNeed !== null) {
    tx.admin = { ok: false, status: 409, code: 'NEEDS_FAILED', message: `step "${stepId}" needs "${failedNeed}", which failed; retry "${failedNeed}" instead` };
    return;
  }
  if (cohort.record.status === 'complete') {
    transitionCohort(tx.journal, cohort.record, 'open');
    tx.journal.set(cohort.record, { resolvedAtMs: null, outcome: null, secondsSaved: null });
    tx.cohort(cohort.record);
  }
  reopen(tx, cohort, step);
  trackOpen(state, tx.journal, cohort);
  state.refile(tx.journal, cohort);
  tx.event(cohort.id, 'step.admin-retry', { stepId });
  state.broadcast(tx, cohort, { cohortId: cohort.id, stepId, state: 'pending', peerId: null, fromMemo: false, cause: { kind: 'admin-retry' } });
  tx.dirty.add(cohort);
  tx.admin = { ok: true };
}

function firstFailedNeed(cohort: Cohort, stepId: string): string | null {
  return cohort.needsOf(stepId).find((need) => cohort.steps.get(need)!.status === 'failed') ?? null;
}

/**
 * A failed step goes back to pending with a clean failure history, and so do
 * the steps that failed only because they need it, once none of their needs
 * is failed. A dependent that still needs another failed step stays failed,
 * its cause naming that step (issue 10, defect 1).
 */
function reopen(tx: CoreTx, cohort: Cohort, step: StepRecord): void {
  transitionStep(tx.journal, step, 'pending');
  tx.journal.set(step, { failures: 0, lostLeases: 0, failedOn: [], failCause: null, failPeerId: null, failExitCode: null, failLogTail: null, resolvedAtMs: null });
  cohort.count(tx.journal, +1, -1);
  tx.step(step);
  for (const dependentId of cohort.dependents.get(step.stepId)!) {
    const dependent = cohort.steps.get(dependentId)!;
    if (dependent.status !== 'failed' || dependent.failCause?.kind !== 'need-failed') continue;
    const stillFailed = firstFailedNeed(cohort, dependentId);
    if (stillFailed === null) {
      reopen(tx, cohort, dependent);
    } else if (dependent.failCause.need !== stillFailed) {
      tx.journal.set(dependent, { failCause: { kind: 'need-failed', need: stillFailed } });
      tx.step(dependent);
    }
  }
}
