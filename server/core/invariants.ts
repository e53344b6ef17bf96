import { canRun } from '../../shared/labels.js';
import type { Cohort } from './cohort.js';
import { canRunSomeUnresolved, labelsOf } from './peer-labels.js';
import type { CoreTx } from './core-tx.js';
import type { PeerState } from './peer-table.js';
import type { SchedulerState } from './scheduler-state.js';
import { quotaKey } from './source-quota.js';
import { isResolved } from './step-status.js';

/**
 * The scheduler's invariants, asserted after every input over what it
 * touched (production), or over all state (tests: `Scheduler.checkInvariants`).
 * A violation is a bug: it throws, and `Scheduler.handle` undoes the input.
 *
 * Per cohort:
 *  - `unresolved` and `failedCount` equal a recount of its steps;
 *  - a step is `leased` iff it has a live lease; at most two live leases, the second a backup;
 *    each live lease is unended, indexed, and its holder's work state is running it;
 *  - `failCause` is set iff the step is failed; a pending step has no failed need;
 *  - `unsharedCause` is set iff the step is unshared; a pending step has no unshared need;
 *  - open iff it has no outcome and no `resolvedAtMs`, iff it is in the open-cohort index; an open
 *    cohort has an unresolved step and is in its source's quota index (source-quota.ts); a cohort
 *    neither isolated nor cancelled is in the matcher's index (cohort-matcher.ts);
 *  - an open cohort with no live lease and a connected idle member has an assignable step
 *    (pending, every need succeeded, and its `requires` within the labels of a connected
 *    member still taking work), unless the authority is draining;
 *  - where steps require labels, a connected waiting member can run some unresolved step
 *    (a peer never waits on steps it could never run: it is released instead).
 * Per peer:
 *  - connected iff it has a connection, and the connection index gives that connection to it; disconnected iff it has a grace deadline iff it is in
 *    the grace index; a running peer's lease is live and held by it; a gone or left peer runs nothing.
 * Per input (over the steps and leases it wrote):
 *  - a step's `attempts` never falls; every lease written has 1 <= attempt <= its step's
 *    `attempts` (grant numbers each new lease `attempts + 1`, so lease attempts only rise).
 * Over time (checked by the property test, enforced by the machines and the store):
 *  `succeeded` is final and written once.
 */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantViolation';
  }
}

function fail(message: string): never {
  throw new InvariantViolation(message);
}

/** What one input touched: its dirty and written cohorts, and their members and written peers. */
export function checkTouched(state: SchedulerState, tx: CoreTx): void {
  const peers = new Set<PeerState>();
  const cohortIds = new Set(tx.touchedCohorts);
  for (const c of tx.dirty) cohortIds.add(c.id);
  for (const id of cohortIds) {
    const cohort = state.cohorts.get(id);
    if (!cohort) continue; // evicted by this input
    checkCohort(state, cohort);
    for (const p of state.peers.members(cohort)) peers.add(p);
  }
  for (const id of tx.touchedPeers) {
    const p = state.peers.get(id);
    if (p) peers.add(p);
  }
  for (const p of peers) checkPeer(state, p);
  checkRising(state, tx);
}

/** Attempts only rise: against the values before the input (the journal keeps them), cheap per written row. */
export function checkRising(state: SchedulerState, tx: CoreTx): void {
  for (const step of tx.writtenSteps) {
    const before = tx.journal.valueBefore(step, 'attempts');
    if (before !== undefined && step.attempts < before) fail(`cohort ${step.cohortId} step ${step.stepId}: attempts fell from ${before} to ${step.attempts}`);
  }
  for (const lease of tx.writtenLeases) {
    const step = state.cohorts.get(lease.cohortId)?.steps.get(lease.stepId);
    if (!step) continue; // its cohort was evicted by this input
    if (lease.attempt < 1 || lease.attempt > step.attempts) fail(`lease ${lease.leaseId} has attempt ${lease.attempt}; its step ${lease.stepId} counts ${step.attempts}`);
  }
}

/** Every cohort and peer, and the indexes over them. */
export function checkAll(state: SchedulerState): void {
  for (const cohort of state.cohorts.values()) checkCohort(state, cohort);
  for (const peer of state.peers.byId.values()) checkPeer(state, peer);
  for (const peer of state.peers.inGrace) if (state.peers.get(peer.peerId) !== peer) fail(`peer ${peer.peerId} is in the grace index but not current`);
  for (const [connId, peer] of state.peers.connections) if (peer.connId !== connId || state.peers.get(peer.peerId) !== peer) fail(`connection ${connId} is indexed to peer ${peer.peerId}, which is not on it`);
  for (const [leaseId, owner] of state.leaseOwners) {
    const lease = owner.leases.get(leaseId);
    if (state.cohorts.get(owner.id) !== owner || lease?.cohortId !== owner.id) fail(`lease ${leaseId} is routed to cohort ${owner.id}, which does not hold it`);
    if (lease.end === null && !owner.live(lease.stepId).includes(lease)) fail(`live lease ${leaseId} is not in its cohort's live list`);
  }
  for (const cohort of state.cohorts.values()) for (const leaseId of cohort.leases.keys()) if (state.leaseOwners.get(leaseId) !== cohort) fail(`cohort ${cohort.id} holds lease ${leaseId}, which is not routed to it`);
}

export function checkCohort(state: SchedulerState, cohort: Cohort): void {
  const where = `cohort ${cohort.id}`;
  if (cohort.record.status === 'open' && state.openBySource.get(quotaKey(cohort.record))?.has(cohort) !== true) fail(`${where} is open but not in its source's quota index`);
  let unresolved = 0;
  let failed = 0;
  const ready: string[] = [];
  for (const step of cohort.ordered) {
    const at = `${where} step ${step.stepId}`;
    if (!isResolved(step.status)) unresolved++;
    if (step.status === 'failed') failed++;
    const live = cohort.live(step.stepId);
    if ((step.status === 'leased') !== live.length > 0) fail(`${at} is ${step.status} with ${live.length} live leases`);
    if (live.length > 2) fail(`${at} has ${live.length} live leases`);
    if (live.length === 2 && !live[1]!.backup) fail(`${at} has a second live lease not marked backup`);
    for (const lease of live) {
      if (lease.end !== null) fail(`${at} lists ended lease ${lease.leaseId} as live`);
      if (cohort.leases.get(lease.leaseId) !== lease || state.leaseOwners.get(lease.leaseId) !== cohort) fail(`${at} live lease ${lease.leaseId} is not indexed`);
      const holder = state.peers.get(lease.peerId);
      if (holder?.work.kind !== 'running' || holder.work.leaseId !== lease.leaseId) fail(`${at} live lease ${lease.leaseId}: its holder ${lease.peerId} is not running it`);
    }
    if ((step.status === 'failed') !== (step.failCause !== null)) fail(`${at} is ${step.status} with fail cause ${JSON.stringify(step.failCause)}`);
    if ((step.status === 'unshared') !== ((step.unsharedCause ?? null) !== null)) fail(`${at} is ${step.status} with unshared cause ${JSON.stringify(step.unsharedCause)}`);
    if (step.status === 'pending') {
      let needsMet = true;
      for (const need of cohort.needsOf(step.stepId)) {
        const status = cohort.steps.get(need)!.status;
        if (status === 'failed' || status === 'unshared') fail(`${at} is pending but its need ${need} is ${status}`);
        if (status !== 'succeeded') needsMet = false;
      }
      if (needsMet) ready.push(step.stepId);
    }
  }
  if (unresolved !== cohort.unresolved) fail(`${where} counts ${cohort.unresolved} unresolved steps; a recount finds ${unresolved}`);
  if (failed !== cohort.failedCount) fail(`${where} counts ${cohort.failedCount} failed steps; a recount finds ${failed}`);
  const r = cohort.record;
  const open = r.status === 'open';
  if (open !== state.openCohorts.has(cohort)) fail(`${where} is ${r.status} but ${open ? 'not ' : ''}in the open-cohort index`);
  if (!r.isolated && r.status !== 'cancelled' && !state.matcher.has(cohort)) fail(`${where} is ${r.status} but not in the matcher's index`);
  if (open !== (r.outcome === null) || open !== (r.resolvedAtMs === null)) fail(`${where} is ${r.status} with outcome ${JSON.stringify(r.outcome)} and resolvedAtMs ${r.resolvedAtMs}`);
  if (!open) return;
  if (unresolved === 0) fail(`${where} is open with every step resolved`);
  if (state.draining) return;
  if (cohort.hasRequirements) {
    for (const peer of state.peers.members(cohort)) {
      if (peer.record.status === 'connected' && peer.work.kind === 'waiting' && !canRunSomeUnresolved(cohort, labelsOf(peer))) {
        fail(`${where} keeps peer ${peer.peerId} waiting although it can run none of the unresolved steps`);
      }
    }
  }
  if (cohort.liveLeases.size > 0) return;
  if (ready.length > 0 && (!cohort.hasRequirements || ready.some((stepId) => someWorkerCanRun(state, cohort, stepId)))) return;
  for (const peer of state.peers.members(cohort)) {
    if (peer.record.status === 'connected' && (peer.work.kind === 'idle' || peer.work.kind === 'waiting')) {
      fail(`${where} is open with nothing running and nothing assignable while peer ${peer.peerId} is ${peer.work.kind}`);
    }
  }
}

/** A connected member still taking work (not told `complete`) has the labels the step requires. */
function someWorkerCanRun(state: SchedulerState, cohort: Cohort, stepId: string): boolean {
  const requires = cohort.requiresOf(stepId);
  for (const peer of state.peers.members(cohort)) {
    if (peer.record.status === 'connected' && peer.work.kind !== 'done' && canRun(requires, labelsOf(peer))) return true;
  }
  return false;
}

export function checkPeer(state: SchedulerState, peer: PeerState): void {
  const where = `peer ${peer.peerId}`;
  const { status, graceEndsAtMs } = peer.record;
  if ((status === 'connected') !== (peer.connId !== null)) fail(`${where} is ${status} with connection ${peer.connId}`);
  if (peer.connId !== null && state.peers.connections.get(peer.connId) !== peer) fail(`${where} is on connection ${peer.connId}, which the connection index does not give to it`);
  const inGrace = state.peers.inGrace.has(peer);
  if ((status === 'disconnected') !== (graceEndsAtMs !== null) || inGrace !== (status === 'disconnected')) {
    fail(`${where} is ${status} with grace deadline ${graceEndsAtMs} and ${inGrace ? '' : 'not '}in the grace index`);
  }
  const waiting = state.peers.waiting.has(peer);
  if ((peer.work.kind === 'waiting') !== waiting) fail(`${where} is ${peer.work.kind} but ${waiting ? '' : 'not '}in the waiting index`);
  if (peer.work.kind === 'running') {
    const lease = state.leaseOwners.get(peer.work.leaseId)?.leases.get(peer.work.leaseId);
    if (!lease || lease.end !== null || lease.peerId !== peer.peerId) fail(`${where} runs lease ${peer.work.leaseId}, which is not a live lease of it`);
    if (status === 'gone' || status === 'left') fail(`${where} is ${status} but runs lease ${peer.work.leaseId}`);
  }
}
