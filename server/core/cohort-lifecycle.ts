import { limits } from '../../shared/limits.js';
import type { Wait } from '../../shared/protocol.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { StepRecord } from './records.js';
import type { PeerState, SchedulerState } from './scheduler-state.js';
import { grant, markFailed } from './step-lifecycle.js';
import { DispatchPlan } from './step-picker.js';
import { isResolved, transitionStep } from './step-status.js';
import { cohortSecondsSaved, peerSummary } from './summary.js';

/**
 * Cohorts as a whole: after every input, complete the resolved ones and give
 * idle peers work or a `wait`; admin cancel and retry; retention sweeps.
 */

/** After every input: complete cohorts that are resolved, give idle peers work or a `wait`. */
export function settle(state: SchedulerState, tx: CoreTx): void {
  for (const cohort of tx.dirty) {
    cohort.record.lastActivityMs = tx.now;
    if (cohort.record.status !== 'open') continue;
    if (cohort.unresolved === 0) completeCohort(state, tx, cohort);
    else dispatch(state, tx, cohort);
  }
}

export function dispatch(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  if (state.draining) return;
  const idle: PeerState[] = [];
  for (const peer of state.currentMembers(cohort)) {
    if (peer.record.status !== 'connected' || peer.leaseId !== null || peer.orphan !== null || peer.done) continue;
    idle.push(peer);
  }
  if (idle.length === 0) return;
  const plan = new DispatchPlan(state.pickContext(tx.now), cohort);
  for (const peer of idle) {
    const choice = plan.take(peer.record.peerId);
    if (choice) {
      grant(state, tx, cohort, choice.step, peer, choice.backup);
    } else if (!peer.waiting) {
      peer.waiting = true;
      tx.send(peer.connId, waitMessage(state, cohort));
    }
  }
}

function waitMessage(state: SchedulerState, cohort: Cohort): Wait {
  const running: { stepId: string; peerId: string }[] = [];
  for (const [stepId, live] of cohort.liveLeases) {
    for (const lease of live) if (running.length < limits.maxWaitEntries) running.push({ stepId, peerId: lease.peerId });
  }
  return { type: 'wait' as const, cohortId: cohort.id, running, unresolved: cohort.unresolved };
}

function completeCohort(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  cohort.record.status = 'complete';
  cohort.record.resolvedAtMs = tx.now;
  tx.cohort(cohort.record);
  const outcome = cohort.failedCount > 0 ? 'failed' : 'succeeded';
  const saved = cohortSecondsSaved(cohort, (c, s) => state.estimateMs(c, s));
  cohort.record.secondsSaved = saved;
  tx.event(cohort.id, 'cohort.complete', { detail: `${outcome}, ${saved} s saved` });
  tx.stat('seconds.saved', saved);
  completeConnectedPeers(state, tx, cohort);
}

/** `complete` to every connected member not told yet (the others get it when they resume or join). */
function completeConnectedPeers(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  for (const peer of state.currentMembers(cohort)) if (peer.record.status === 'connected' && !peer.done) sendComplete(state, tx, cohort, peer);
}

export function sendComplete(state: SchedulerState, tx: CoreTx, cohort: Cohort, peer: PeerState): void {
  const outcome = cohort.record.status === 'cancelled' ? 'cancelled' : cohort.failedCount > 0 ? 'failed' : 'succeeded';
  peer.done = true;
  peer.waiting = false;
  tx.send(peer.connId, {
    type: 'complete',
    cohortId: cohort.id,
    outcome,
    summary: peerSummary(cohort, peer.record.peerId, (c, s) => state.estimateMs(c, s)),
  });
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
  cancelCohort(state, tx, cohort, 'cancelled by an admin');
  tx.admin = { ok: true };
}

function cancelCohort(state: SchedulerState, tx: CoreTx, cohort: Cohort, reason: string): void {
  cohort.record.status = 'cancelled';
  cohort.record.resolvedAtMs = tx.now;
  for (const step of cohort.ordered) if (!isResolved(step.status)) markFailed(state, tx, cohort, step, reason);
  state.matcher.remove(cohort);
  tx.cohort(cohort.record);
  tx.event(cohort.id, 'cohort.cancelled', { detail: reason });
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
  const failedNeed = cohort.needsOf(stepId).find((need) => cohort.steps.get(need)!.status === 'failed');
  if (failedNeed !== undefined) {
    tx.admin = { ok: false, status: 409, code: 'NEEDS_FAILED', message: `step "${stepId}" needs "${failedNeed}", which failed; retry "${failedNeed}" instead` };
    return;
  }
  const reopen = (s: StepRecord): void => {
    transitionStep(s, 'pending');
    Object.assign(s, { failures: 0, lostLeases: 0, failedOn: [], failReason: null, failPeerId: null, failExitCode: null, failLogTail: null, resolvedAtMs: null });
    cohort.unresolved++;
    cohort.failedCount--;
    tx.step(s);
    for (const dependentId of cohort.dependents.get(s.stepId)!) {
      const d = cohort.steps.get(dependentId)!;
      if (d.status === 'failed' && d.failReason?.startsWith('needs ')) reopen(d);
    }
  };
  reopen(step);
  if (cohort.record.status === 'complete') {
    cohort.record.status = 'open';
    cohort.record.resolvedAtMs = null;
    tx.cohort(cohort.record);
  }
  if (cohort.failedCount === 0) state.matcher.add(cohort);
  tx.event(cohort.id, 'step.admin-retry', { stepId });
  state.broadcast(tx, cohort, { type: 'step.update', cohortId: cohort.id, stepId, state: 'pending', peerId: null, fromMemo: false, reason: 'retried by an admin' });
  tx.dirty.add(cohort);
  tx.admin = { ok: true };
}

/** Expires memos, abandons open cohorts nobody has worked on for the retention time, forgets old resolved ones. */
export function sweep(state: SchedulerState, tx: CoreTx): void {
  for (const [key, memo] of state.memos) {
    if (tx.now >= memo.expiresAtMs) {
      state.memos.delete(key);
      tx.append({ table: 'memo.delete', memoKey: key });
    }
  }
  const retention = state.config.cohortRetentionMs;
  for (const cohort of [...state.cohorts.values()]) {
    if (state.activeMembers(cohort) > 0) continue;
    if (cohort.record.status === 'open' && tx.now >= cohort.record.lastActivityMs + retention) {
      cancelCohort(state, tx, cohort, 'abandoned: no peer for the retention period');
    } else if (cohort.record.status !== 'open' && tx.now >= (cohort.record.resolvedAtMs ?? 0) + retention) {
      evict(state, cohort);
    }
  }
}

function evict(state: SchedulerState, cohort: Cohort): void {
  state.cohorts.delete(cohort.id);
  state.matcher.remove(cohort);
  for (const [leaseId, lease] of state.leases) if (lease.cohortId === cohort.id) state.leases.delete(leaseId);
  for (const peer of [...state.currentMembers(cohort)]) state.peers.delete(peer.record.peerId);
}
