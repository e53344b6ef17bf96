import { canRun } from '../../shared/labels.js';
import type { Cohort } from './cohort.js';
import { canRunSomeUnresolved, labelsOf } from './peer-labels.js';
import type { CoreTx } from './core-tx.js';
import type { InputSet } from './input-set.js';
import type { PeerState } from './peer-table.js';
import { heldLeaseId } from './peer-work.js';
import { retryOf } from './ready-queue.js';
import type { StepRecord } from './records.js';
import type { SchedulerState } from './scheduler-state.js';
import { isResolved } from './step-status.js';

/**
 * The scheduler's invariants, asserted after every input over what it
 * touched (production), or over all state (tests: `Scheduler.checkInvariants`).
 * A violation is a bug: it throws, and `Scheduler.handle` undoes the input.
 * After an input the check costs what the input changed, not the cohort's
 * size: the steps it wrote, the counters by the differences it made, the
 * peers it touched (`checkTouched`); the full check recounts everything.
 *
 * Per cohort:
 *  - `unresolved` and `failedCount` equal a recount of its steps (after an input: their values
 *    before it plus the status changes it made);
 *  - every ready step (pending, needs met) is in the ready queue under its current rank;
 *  - a step is `leased` iff it has a live lease; at most two live leases, the second a backup;
 *    each live lease is unended, indexed, and its holder's work state is running it; every live
 *    lease is in the cohort's live-start heap (cohort-data.ts `liveStarts`);
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
 *    the grace index; a running peer's lease is live and held by it; a gone or left peer runs nothing;
 *    it is in its cohort's available, idle, active and success-listener indexes iff it is (peer-table.ts).
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

/**
 * What one input touched, at a cost that does not grow with the cohort
 * (issue 17): in each cohort it touched, the steps it wrote (and the steps of
 * the leases it wrote, and the dependents of steps it failed or left
 * unshared), the derived counters against the status changes it made (the
 * journal keeps each status before the input), the cohort's own record and
 * indexes, and the peers whose record or work state changed. A cohort the
 * input created is checked whole.
 */
export function checkTouched(state: SchedulerState, tx: CoreTx): void {
  // The cohorts it touched: dirty ones, then those whose rows it wrote (each once; no set made for them).
  for (let i = 0; i < tx.dirty.size; i++) checkTouchedCohort(state, tx, tx.dirty.at(i));
  for (let i = 0; i < tx.touchedCohorts.size; i++) {
    const cohort = state.cohorts.get(tx.touchedCohorts.at(i));
    if (cohort && !tx.dirty.has(cohort)) checkTouchedCohort(state, tx, cohort);
  }
  for (let i = 0; i < tx.touchedPeers.size; i++) {
    const peer = state.peers.get(tx.touchedPeers.at(i));
    if (!peer) continue;
    checkPeer(state, peer);
    const was = tx.journal.valueBefore(peer, 'work');
    if (was?.kind === 'running' && heldLeaseId(peer.work) !== was.leaseId) {
      const lease = state.leaseOwners.get(was.leaseId)?.leases.get(was.leaseId);
      if (lease && lease.end === null) fail(`peer ${peer.peerId} stopped running lease ${was.leaseId}, which is still live`);
    }
  }
  checkRising(state, tx);
}

function checkTouchedCohort(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  if (state.cohorts.get(cohort.id) !== cohort) return; // evicted by this input
  if (tx.createdCohorts.has(cohort.id)) checkCohort(state, cohort);
  else checkCohortChanges(state, tx, cohort);
}

/**
 * The steps an input changed in a cohort it did not create (the steps it wrote, the steps of the
 * leases it wrote, each once), its counters by difference, and the cohort as a whole.
 */
function checkCohortChanges(state: SchedulerState, tx: CoreTx, cohort: Cohort): void {
  const written = tx.checkedSteps;
  written.clear();
  const steps = tx.writtenSteps;
  for (let i = 0; i < steps.size; i++) if (steps.at(i).cohortId === cohort.id) addStep(written, cohort, steps.at(i).stepId);
  const leases = tx.writtenLeases;
  for (let i = 0; i < leases.size; i++) if (leases.at(i).cohortId === cohort.id) addStep(written, cohort, leases.at(i).stepId);
  let unresolved = tx.journal.valueBefore(cohort, 'unresolved') ?? cohort.unresolved;
  let failed = tx.journal.valueBefore(cohort, 'failedCount') ?? cohort.failedCount;
  let dependents: Set<StepRecord> | null = null;
  for (let i = 0; i < written.size; i++) {
    const step = written.at(i);
    const was = tx.journal.valueBefore(step, 'status') ?? step.status;
    unresolved += (isResolved(step.status) ? 0 : 1) - (isResolved(was) ? 0 : 1);
    failed += (step.status === 'failed' ? 1 : 0) - (was === 'failed' ? 1 : 0);
    // A step failed or left unshared: what needs it may not stay pending.
    if (step.status === 'failed' || step.status === 'unshared') {
      for (const dependentId of cohort.dependents.get(step.stepId)!) (dependents ??= new Set()).add(cohort.steps.get(dependentId)!);
    }
  }
  if (unresolved !== cohort.unresolved) fail(`cohort ${cohort.id} counts ${cohort.unresolved} unresolved steps; its changes make ${unresolved}`);
  if (failed !== cohort.failedCount) fail(`cohort ${cohort.id} counts ${cohort.failedCount} failed steps; its changes make ${failed}`);
  for (let i = 0; i < written.size; i++) checkStep(state, cohort, written.at(i));
  if (dependents !== null) for (const step of dependents) if (!written.has(step)) checkStep(state, cohort, step);
  written.clear();
  checkCohortWhole(state, cohort, tx);
}

/** Adds the cohort's step by id (its current record) to `steps`. */
function addStep(steps: InputSet<StepRecord>, cohort: Cohort, stepId: string): void {
  const step = cohort.steps.get(stepId);
  if (step) steps.add(step);
}

/** Attempts only rise: against the values before the input (the journal keeps them), cheap per written row. */
export function checkRising(state: SchedulerState, tx: CoreTx): void {
  for (let i = 0; i < tx.writtenSteps.size; i++) {
    const step = tx.writtenSteps.at(i);
    const before = tx.journal.valueBefore(step, 'attempts');
    if (before !== undefined && step.attempts < before) fail(`cohort ${step.cohortId} step ${step.stepId}: attempts fell from ${before} to ${step.attempts}`);
  }
  for (let i = 0; i < tx.writtenLeases.size; i++) {
    const lease = tx.writtenLeases.at(i);
    const step = state.cohorts.get(lease.cohortId)?.steps.get(lease.stepId);
    if (!step) continue; // its cohort was evicted by this input
    if (lease.attempt < 1 || lease.attempt > step.attempts) fail(`lease ${lease.leaseId} has attempt ${lease.attempt}; its step ${lease.stepId} counts ${step.attempts}`);
  }
}

/** Every cohort and peer, and the indexes over them. */
export function checkAll(state: SchedulerState): void {
  for (const cohort of state.cohorts.values()) checkCohort(state, cohort);
  for (const peer of state.peers.byId.values()) checkPeer(state, peer);
  for (const [cohortId, set] of state.peers.available) for (const peer of set) if (peer.record.cohortId !== cohortId || !state.peers.isAvailable(peer)) fail(`peer ${peer.peerId} is in the available index of cohort ${cohortId} but not available there`);
  for (const [cohortId, set] of state.peers.idle) for (const peer of set) if (peer.record.cohortId !== cohortId || !state.peers.isIdle(peer)) fail(`peer ${peer.peerId} is in the idle index of cohort ${cohortId} but not idle there`);
  for (const [cohortId, set] of state.peers.active) for (const peer of set) if (peer.record.cohortId !== cohortId || !state.peers.isActive(peer)) fail(`peer ${peer.peerId} is in the active index of cohort ${cohortId} but not active there`);
  for (const [cohortId, set] of state.peers.successListeners) for (const peer of set) if (peer.record.cohortId !== cohortId || !state.peers.hearsEverySuccess(peer)) fail(`peer ${peer.peerId} is in the success listeners of cohort ${cohortId} but should not hear every success there`);
  for (const index of [state.peers.available, state.peers.idle, state.peers.active, state.peers.successListeners]) {
    for (const [cohortId, set] of index) {
      if (!state.cohorts.has(cohortId)) fail(`a per-cohort peer index keeps a set for cohort ${cohortId}, which is not in memory`);
      if (set.size === 0 && state.cohorts.get(cohortId)!.record.status !== 'open') fail(`a per-cohort peer index keeps an empty set for cohort ${cohortId}, which is not open`);
    }
  }
  for (const peer of state.peers.orphaned) if (state.peers.get(peer.peerId) !== peer || peer.work.kind !== 'orphaned') fail(`peer ${peer.peerId} is in the orphaned index but not current and orphaned`);
  const waitingIn = new Map<string, number>();
  for (const peer of state.peers.waiting) waitingIn.set(peer.record.cohortId, (waitingIn.get(peer.record.cohortId) ?? 0) + 1);
  for (const [cohortId, n] of state.peers.waitingIn) if (waitingIn.get(cohortId) !== n) fail(`cohort ${cohortId} counts ${n} waiting peers; a recount finds ${waitingIn.get(cohortId) ?? 0}`);
  if (waitingIn.size !== state.peers.waitingIn.size) fail(`the waiting count covers ${state.peers.waitingIn.size} cohorts; a recount finds ${waitingIn.size}`);
  for (const peer of state.peers.inGrace) if (state.peers.get(peer.peerId) !== peer) fail(`peer ${peer.peerId} is in the grace index but not current`);
  for (const [connId, peer] of state.peers.connections) if (peer.connId !== connId || state.peers.get(peer.peerId) !== peer) fail(`connection ${connId} is indexed to peer ${peer.peerId}, which is not on it`);
  for (const [leaseId, owner] of state.leaseOwners) {
    const lease = owner.leases.get(leaseId);
    if (state.cohorts.get(owner.id) !== owner || lease?.cohortId !== owner.id) fail(`lease ${leaseId} is routed to cohort ${owner.id}, which does not hold it`);
    if (lease.end === null && !owner.live(lease.stepId).includes(lease)) fail(`live lease ${leaseId} is not in its cohort's live list`);
  }
  for (const cohort of state.cohorts.values()) for (const leaseId of cohort.leases.keys()) if (state.leaseOwners.get(leaseId) !== cohort) fail(`cohort ${cohort.id} holds lease ${leaseId}, which is not routed to it`);
}

/** Every step of the cohort, a recount of its counters, and the cohort as a whole (tests, restore, a new cohort). */
export function checkCohort(state: SchedulerState, cohort: Cohort): void {
  const where = `cohort ${cohort.id}`;
  let unresolved = 0;
  let failed = 0;
  for (const step of cohort.ordered) {
    if (!isResolved(step.status)) unresolved++;
    if (step.status === 'failed') failed++;
    checkStep(state, cohort, step);
  }
  if (unresolved !== cohort.unresolved) fail(`${where} counts ${cohort.unresolved} unresolved steps; a recount finds ${unresolved}`);
  if (failed !== cohort.failedCount) fail(`${where} counts ${cohort.failedCount} failed steps; a recount finds ${failed}`);
  checkReadyQueue(cohort);
  const starts = new Set(cohort.liveStarts.entries());
  for (const live of cohort.liveLeases.values()) for (const lease of live) if (!starts.has(lease)) fail(`${where} live lease ${lease.leaseId} is not in the live-start heap`);
  checkCohortWhole(state, cohort, null);
}

function checkStep(state: SchedulerState, cohort: Cohort, step: StepRecord): void {
  const live = cohort.live(step.stepId);
  if ((step.status === 'leased') !== live.length > 0) fail(`cohort ${cohort.id} step ${step.stepId} is ${step.status} with ${live.length} live leases`);
  if (live.length > 2) fail(`cohort ${cohort.id} step ${step.stepId} has ${live.length} live leases`);
  if (live.length === 2 && !live[1]!.backup) fail(`cohort ${cohort.id} step ${step.stepId} has a second live lease not marked backup`);
  for (const lease of live) {
    if (lease.end !== null) fail(`cohort ${cohort.id} step ${step.stepId} lists ended lease ${lease.leaseId} as live`);
    if (cohort.leases.get(lease.leaseId) !== lease || state.leaseOwners.get(lease.leaseId) !== cohort) fail(`cohort ${cohort.id} step ${step.stepId} live lease ${lease.leaseId} is not indexed`);
    const holder = state.peers.get(lease.peerId);
    if (holder?.work.kind !== 'running' || holder.work.leaseId !== lease.leaseId) fail(`cohort ${cohort.id} step ${step.stepId} live lease ${lease.leaseId}: its holder ${lease.peerId} is not running it`);
  }
  if ((step.status === 'failed') !== (step.failCause !== null)) fail(`cohort ${cohort.id} step ${step.stepId} is ${step.status} with fail cause ${JSON.stringify(step.failCause)}`);
  if ((step.status === 'unshared') !== ((step.unsharedCause ?? null) !== null)) fail(`cohort ${cohort.id} step ${step.stepId} is ${step.status} with unshared cause ${JSON.stringify(step.unsharedCause)}`);
  if (step.status === 'pending') {
    for (const need of cohort.needsOf(step.stepId)) {
      const status = cohort.steps.get(need)!.status;
      if (status === 'failed' || status === 'unshared') fail(`cohort ${cohort.id} step ${step.stepId} is pending but its need ${need} is ${status}`);
    }
  }
}

/** Ready steps (pending, needs met) in schema order: O(steps), for the full check. */
function readySteps(cohort: Cohort): StepRecord[] {
  return cohort.ordered.filter((step) => step.status === 'pending' && cohort.needsMet(step.stepId));
}

/** Every ready step has an entry in the ready queue under its current retry rank (ready-queue.ts). */
function checkReadyQueue(cohort: Cohort): void {
  const queued = new Set<StepRecord>();
  for (const entry of cohort.ready.entries()) if (entry.retry === retryOf(entry.step)) queued.add(entry.step);
  for (const step of readySteps(cohort)) if (!queued.has(step)) fail(`cohort ${cohort.id} step ${step.stepId} is ready but not in the ready queue`);
}

/**
 * The cohort's record and indexes, and what it owes its members. With `tx`
 * (after an input) the assignable-step check asks the ready queue (a look
 * at its top, journaled); without (the full check) it recounts.
 */
function checkCohortWhole(state: SchedulerState, cohort: Cohort, tx: CoreTx | null): void {
  const r = cohort.record;
  const open = r.status === 'open';
  if (open && state.openBySource.get(cohort.quotaKey)?.has(cohort) !== true) fail(`cohort ${cohort.id} is open but not in its source's quota index`);
  if (open !== state.openCohorts.has(cohort)) fail(`cohort ${cohort.id} is ${r.status} but ${open ? 'not ' : ''}in the open-cohort index`);
  if (!r.isolated && r.status !== 'cancelled' && !state.matcher.has(cohort)) fail(`cohort ${cohort.id} is ${r.status} but not in the matcher's index`);
  if (open !== (r.outcome === null) || open !== (r.resolvedAtMs === null)) fail(`cohort ${cohort.id} is ${r.status} with outcome ${JSON.stringify(r.outcome)} and resolvedAtMs ${r.resolvedAtMs}`);
  if (!open) return;
  if (cohort.unresolved === 0) fail(`cohort ${cohort.id} is open with every step resolved`);
  if (state.draining) return;
  if (cohort.hasRequirements) {
    // Whether a waiting member can still run something changes only when a step is resolved (the
    // counters change) or when it starts waiting (it is touched): after an input, every member in
    // the first case, the touched ones in the second.
    if (tx === null || tx.journal.valueBefore(cohort, 'unresolved') !== undefined) {
      for (const peer of state.peers.members(cohort)) checkWaitingCanRun(cohort, peer);
    } else {
      for (let i = 0; i < tx.touchedPeers.size; i++) {
        const peer = state.peers.get(tx.touchedPeers.at(i));
        if (peer !== undefined && peer.record.cohortId === cohort.id) checkWaitingCanRun(cohort, peer);
      }
    }
  }
  if (cohort.liveLeases.size > 0) return;
  // Nothing runs: something must be assignable to an idle member, or no member may be idle.
  if (cohort.hasRequirements || tx === null) {
    const ready = readySteps(cohort);
    if (ready.length > 0 && (!cohort.hasRequirements || ready.some((step) => someWorkerCanRun(state, cohort, step.stepId)))) return;
  } else if (cohort.ready.hasReady(tx.journal)) {
    return;
  }
  for (const peer of state.peers.members(cohort)) {
    if (peer.record.status === 'connected' && (peer.work.kind === 'idle' || peer.work.kind === 'waiting')) {
      fail(`cohort ${cohort.id} is open with nothing running and nothing assignable while peer ${peer.peerId} is ${peer.work.kind}`);
    }
  }
}

/** A connected member told `wait` in a cohort with labelled steps can run one of its unresolved steps. */
function checkWaitingCanRun(cohort: Cohort, peer: PeerState): void {
  if (peer.record.status === 'connected' && peer.work.kind === 'waiting' && !canRunSomeUnresolved(cohort, labelsOf(peer))) {
    fail(`cohort ${cohort.id} keeps peer ${peer.peerId} waiting although it can run none of the unresolved steps`);
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
  const { status, graceEndsAtMs } = peer.record;
  if ((status === 'connected') !== (peer.connId !== null)) fail(`peer ${peer.peerId} is ${status} with connection ${peer.connId}`);
  if (peer.connId !== null && state.peers.connections.get(peer.connId) !== peer) fail(`peer ${peer.peerId} is on connection ${peer.connId}, which the connection index does not give to it`);
  const inGrace = state.peers.inGrace.has(peer);
  if ((status === 'disconnected') !== (graceEndsAtMs !== null) || inGrace !== (status === 'disconnected')) {
    fail(`peer ${peer.peerId} is ${status} with grace deadline ${graceEndsAtMs} and ${inGrace ? '' : 'not '}in the grace index`);
  }
  const available = state.peers.available.get(peer.record.cohortId)?.has(peer) === true;
  if (available !== state.peers.isAvailable(peer)) fail(`peer ${peer.peerId} is ${peer.work.kind} on connection ${peer.connId} but ${available ? '' : 'not '}in its cohort's available index`);
  const idle = state.peers.idle.get(peer.record.cohortId)?.has(peer) === true;
  if (idle !== state.peers.isIdle(peer)) fail(`peer ${peer.peerId} is ${peer.work.kind} on connection ${peer.connId} but ${idle ? '' : 'not '}in its cohort's idle index`);
  const active = state.peers.active.get(peer.record.cohortId)?.has(peer) === true;
  if (active !== state.peers.isActive(peer)) fail(`peer ${peer.peerId} is ${status} but ${active ? '' : 'not '}in its cohort's active index`);
  const listening = state.peers.successListeners.get(peer.record.cohortId)?.has(peer) === true;
  if (listening !== state.peers.hearsEverySuccess(peer)) fail(`peer ${peer.peerId} is ${peer.work.kind} on connection ${peer.connId} (targeted updates: ${peer.targetedUpdates === true}) but ${listening ? '' : 'not '}in its cohort's success listeners`);
  if ((peer.work.kind === 'orphaned') !== state.peers.orphaned.has(peer)) fail(`peer ${peer.peerId} is ${peer.work.kind} but ${state.peers.orphaned.has(peer) ? '' : 'not '}in the orphaned index`);
  const waiting = state.peers.waiting.has(peer);
  if ((peer.work.kind === 'waiting') !== waiting) fail(`peer ${peer.peerId} is ${peer.work.kind} but ${waiting ? '' : 'not '}in the waiting index`);
  if (peer.work.kind === 'running') {
    const lease = state.leaseOwners.get(peer.work.leaseId)?.leases.get(peer.work.leaseId);
    if (!lease || lease.end !== null || lease.peerId !== peer.peerId) fail(`peer ${peer.peerId} runs lease ${peer.work.leaseId}, which is not a live lease of it`);
    if (status === 'gone' || status === 'left') fail(`peer ${peer.peerId} is ${status} but runs lease ${peer.work.leaseId}`);
  }
}
