import type { LeaseLossWhy } from './causes.js';
import { Cohort } from './cohort.js';
import { sendComplete } from './cohort-lifecycle.js';
import type { CoreTx } from './core-tx.js';
import type { AloneReason } from './cohort-matcher.js';
import type { ConnId, Effect } from './effects.js';
import { transitionPeer } from './peer-status.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { CohortRecord, PeerRecord, StepRecord } from './records.js';
import type { HelloInput, PeerState, SchedulerState } from './scheduler-state.js';
import { quotaRefusal } from './source-quota.js';
import { memoKey, patchsetSet } from './source-state.js';
import { loseLease } from './step-lifecycle.js';
import { isResolved, transitionStep } from './step-status.js';

/**
 * Peers coming and going: hello (join a matching cohort or create one, or
 * resume a registration with its token), duplicate peer ids, drops with a
 * grace period, bye, and the end of grace. See the machines in
 * peer-status.ts (the persisted registration) and peer-work.ts.
 */

export function onHello(state: SchedulerState, tx: CoreTx, input: HelloInput): void {
  if (state.draining) {
    // Draining is the core's one flag: no joins or resumes; the peer reconnects to whoever serves next.
    tx.refuse(input.connId, { kind: 'shutting-down' });
    return;
  }
  const joinedHere = state.connections.get(input.connId);
  if (joinedHere) {
    tx.refuse(input.connId, { kind: 'already-joined', peerId: joinedHere.peerId });
    return;
  }
  const existing = state.peers.get(input.peerId);
  const active = existing && (existing.record.status === 'connected' || existing.record.status === 'disconnected');
  if (existing && active) {
    if (input.presentedToken && input.presentedToken.hash === existing.record.tokenHash) {
      resume(state, tx, existing, input);
      return;
    }
    tx.refuse(input.connId, { kind: 'duplicate-peer', peerId: input.peerId, heldBy: existing.record.status === 'connected' ? 'connection' : 'grace' });
    return;
  }
  join(state, tx, input);
}

function resume(state: SchedulerState, tx: CoreTx, peer: PeerState, input: HelloInput): void {
  const cohort = state.cohorts.get(peer.record.cohortId)!;
  if (cohort.record.digest !== input.digest) {
    tx.refuse(input.connId, { kind: 'schema-mismatch', cohortId: cohort.id, schemaId: cohort.record.schema.id, digest: cohort.record.digest, presented: input.digest });
    return;
  }
  if (peer.connId !== null) {
    tx.emit({ kind: 'superseded', connId: peer.connId });
    tx.journal.setAdd(state.superseded, peer.connId);
  }
  state.setConnection(tx.journal, peer, input.connId);
  if (peer.record.status !== 'connected') transitionPeer(tx.journal, peer.record, 'connected');
  tx.journal.set(peer.record, { graceEndsAtMs: null });
  if (peer.work.kind === 'waiting') state.setWork(tx.journal, peer, idleWork);
  tx.journal.setDelete(state.inGrace, peer);
  tx.peer(peer.record);
  tx.event(cohort.id, 'peer.resumed', { peerId: peer.peerId });

  const current = input.currentStep;
  const held = heldLeaseId(peer.work);
  if (held !== null) {
    if (current?.leaseId !== held) loseLease(state, tx, cohort, state.leases.get(held)!, 'not-resumed');
  } else if (current && !(peer.work.kind === 'orphaned' && peer.work.leaseId === current.leaseId)) {
    adoptOrphan(state, tx, cohort, peer, current);
  }
  tx.emit(joined(state, cohort, peer, input.connId, input.presentedToken!.token, true));
  if (cohort.record.status !== 'open') sendComplete(state, tx, cohort, peer);
  tx.dirty.add(cohort);
}

function join(state: SchedulerState, tx: CoreTx, input: HelloInput): void {
  const reg = input.registration;
  const previous = state.peers.get(input.peerId);
  let cohort = state.matcher.find(reg, input.digest, input.presentedToken !== null);
  if (!cohort) {
    const refusal = quotaRefusal(state, tx.journal, reg, input.schema.steps.length);
    if (refusal !== null) {
      tx.refuse(input.connId, refusal);
      return;
    }
    cohort = createCohort(state, tx, input);
  }
  if (reg.pipelineType === 'dependent') {
    const before = cohort.patchsets.size;
    for (const p of reg.patchsets) tx.journal.setAdd(cohort.patchsets, p);
    if (cohort.patchsets.size !== before) {
      state.matcher.addPatchsets(tx.journal, cohort);
      tx.journal.set(cohort.record, { patchsets: [...cohort.patchsets].sort() });
      tx.cohort(cohort.record);
    }
  }
  if (previous) tx.journal.setDelete(state.inGrace, previous);
  const record: PeerRecord = {
    peerId: input.peerId,
    cohortId: cohort.id,
    tokenHash: input.freshToken.hash,
    registration: reg,
    resumable: input.resumable,
    status: 'connected',
    joinedAtMs: tx.now,
    graceEndsAtMs: null,
  };
  const peer: PeerState = { peerId: input.peerId, record, connId: null, work: idleWork };
  tx.journal.mapSet(state.peers, input.peerId, peer);
  state.setConnection(tx.journal, peer, input.connId);
  tx.journal.setAdd(cohort.members, input.peerId);
  cohort.addRepos(tx.journal, reg);
  tx.peer(record);
  tx.event(cohort.id, 'peer.joined', { peerId: input.peerId, detail: `${cohort.members.size} peers` });
  if (input.currentStep) adoptOrphan(state, tx, cohort, peer, input.currentStep);
  tx.emit(joined(state, cohort, peer, input.connId, input.freshToken.token, false, whyAlone(state, cohort, input)));
  if (cohort.record.status !== 'open') sendComplete(state, tx, cohort, peer);
  tx.dirty.add(cohort);
}

/**
 * The peer says it is running a step under a lease the authority no longer
 * counts as live. Let it finish when the step is unresolved (its completion
 * may still count); tell it to stop when the step is already resolved.
 */
function adoptOrphan(state: SchedulerState, tx: CoreTx, cohort: Cohort, peer: PeerState, current: { stepId: string; leaseId: string }): void {
  const step = cohort.steps.get(current.stepId);
  if (step && isResolved(step.status)) {
    if (peer.connId !== null) tx.emit({ kind: 'abort', connId: peer.connId, stepId: current.stepId, leaseId: current.leaseId, why: 'lease-lost' });
    return;
  }
  state.setWork(tx.journal, peer, { kind: 'orphaned', stepId: current.stepId, leaseId: current.leaseId });
}

function createCohort(state: SchedulerState, tx: CoreTx, input: HelloInput): Cohort {
  const reg = input.registration;
  const record: CohortRecord = {
    cohortId: state.ids.cohortId(),
    repo: reg.repo,
    baseRef: reg.baseRef,
    cacheId: reg.cacheId,
    pipelineType: reg.pipelineType,
    isolated: reg.isolated,
    schema: input.schema,
    digest: input.digest,
    baseSha: reg.baseSha,
    cohortKey: reg.cohortKey ?? null,
    patchsets: patchsetSet(reg.patchsets),
    status: 'open',
    createdAtMs: tx.now,
    resolvedAtMs: null,
    lastActivityMs: tx.now,
    secondsSaved: null,
    outcome: null,
  };
  const steps: StepRecord[] = input.schema.steps.map((def) => ({
    cohortId: record.cohortId,
    stepId: def.id,
    status: 'pending',
    attempts: 0,
    failures: 0,
    lostLeases: 0,
    failedOn: [],
    builtBy: null,
    fromMemo: false,
    durationMs: null,
    failCause: null,
    failPeerId: null,
    failExitCode: null,
    failLogTail: null,
    resolvedAtMs: null,
  }));
  tx.cohort(record);
  tx.event(record.cohortId, 'cohort.created', { detail: `${input.schema.id} ${input.digest}` });
  const siblings = state.matcher.digestSiblings(reg, input.schema.id, input.digest);
  if (siblings.length > 0) {
    const detail = `schema ${input.schema.id} is also in use with digest ${siblings.join(', ')}; peers with different digests never share a cohort`;
    tx.event(record.cohortId, 'schema.digest-differs', { detail });
    tx.notice('schema id seen with different digests', { schemaId: input.schema.id, digest: input.digest, otherDigests: siblings.join(',') });
  }
  steps.forEach((step, i) => {
    tx.step(step);
    const key = memoKey(reg, input.schema.steps[i]!.target);
    const memo = key === null ? undefined : state.memos.get(key);
    if (memo && tx.now < memo.expiresAtMs) {
      // A new row: nothing to undo if the input fails, but the edge is still checked.
      transitionStep(tx.journal, step, 'succeeded');
      tx.journal.set(step, { fromMemo: true, durationMs: memo.durationMs, resolvedAtMs: tx.now });
      tx.append({ table: 'success', cohortId: record.cohortId, stepId: step.stepId, leaseId: null, peerId: null, atMs: tx.now });
      tx.event(record.cohortId, 'step.memo', { stepId: step.stepId, detail: `built in cohort ${memo.cohortId}` });
      tx.stat('step.reused');
    }
  });
  const cohort = new Cohort(record, steps);
  state.indexCohort(tx, cohort);
  return cohort;
}

/**
 * When the joiner is alone in its cohort, why it could have had company: one
 * reason per group of open cohorts that differ from it in one fixable way,
 * with the number of active peers in them (worded by the transport).
 */
function whyAlone(state: SchedulerState, cohort: Cohort, input: HelloInput): AloneReason[] {
  if (state.activeMembers(cohort) !== 1) return [];
  const groups = new Map<string, AloneReason>();
  for (const found of state.matcher.companyElsewhere(input.registration, input.schema.id, input.digest)) {
    const peers = state.activeMembers(found.cohort);
    if (peers === 0) continue;
    const { cohort: _c, ...difference } = found;
    const key = JSON.stringify(difference);
    const seen = groups.get(key);
    groups.set(key, { ...difference, peers: (seen?.peers ?? 0) + peers });
  }
  return [...groups.values()].slice(0, 8);
}

function joined(state: SchedulerState, cohort: Cohort, peer: PeerState, connId: ConnId, resumeToken: string, resumed: boolean, alone: readonly AloneReason[] = []): Effect {
  return {
    kind: 'joined',
    connId,
    peerId: peer.peerId,
    resumeToken,
    resumed,
    cohort: {
      id: cohort.id,
      peers: state.activeMembers(cohort),
      steps: cohort.ordered.length,
      resolved: cohort.ordered.length - cohort.unresolved,
      succeeded: cohort.ordered.flatMap((s) => (s.status === 'succeeded' ? [{ stepId: s.stepId, peerId: s.builtBy, fromMemo: s.fromMemo }] : [])),
    },
    pingIntervalMs: state.config.pingIntervalMs,
    ...(alone.length > 0 ? { alone: [...alone] } : {}),
  };
}

export function onDisconnected(state: SchedulerState, tx: CoreTx, connId: ConnId): void {
  if (state.superseded.has(connId)) {
    tx.journal.setDelete(state.superseded, connId);
    return;
  }
  const peer = state.connections.get(connId);
  if (!peer) return; // no hello was accepted on it, or its peer already left (bye)
  const peerId = peer.peerId;
  state.setConnection(tx.journal, peer, null);
  if (peer.work.kind === 'waiting') state.setWork(tx.journal, peer, idleWork);
  const cohort = state.cohorts.get(peer.record.cohortId)!;
  tx.dirty.add(cohort);
  if (peer.work.kind === 'done') {
    leave(state, tx, cohort, peer, 'left');
    return;
  }
  const graceEndsAtMs = tx.now + (peer.record.resumable ? state.config.leaseGraceMs : 0);
  transitionPeer(tx.journal, peer.record, 'disconnected');
  tx.journal.set(peer.record, { graceEndsAtMs });
  state.enterGrace(tx.journal, peer, graceEndsAtMs);
  tx.peer(peer.record);
  tx.event(cohort.id, 'peer.disconnected', { peerId, detail: `grace until ${graceEndsAtMs}` });
  if (graceEndsAtMs <= tx.now) expireGrace(state, tx, peer);
}

export function onBye(state: SchedulerState, tx: CoreTx, connId: ConnId): void {
  const peer = state.connections.get(connId);
  if (!peer) return; // a bye before hello, or on a replaced connection: the socket closes either way
  const cohort = state.cohorts.get(peer.record.cohortId)!;
  tx.dirty.add(cohort);
  dropLease(state, tx, cohort, peer, 'bye');
  leave(state, tx, cohort, peer, 'left');
}

function dropLease(state: SchedulerState, tx: CoreTx, cohort: Cohort, peer: PeerState, why: LeaseLossWhy): void {
  const held = heldLeaseId(peer.work);
  if (held !== null) loseLease(state, tx, cohort, state.leases.get(held)!, why);
}

function leave(state: SchedulerState, tx: CoreTx, cohort: Cohort, peer: PeerState, status: 'gone' | 'left'): void {
  state.setConnection(tx.journal, peer, null);
  if (peer.work.kind === 'orphaned' || peer.work.kind === 'waiting') state.setWork(tx.journal, peer, idleWork);
  transitionPeer(tx.journal, peer.record, status);
  tx.journal.set(peer.record, { graceEndsAtMs: null });
  tx.journal.setDelete(state.inGrace, peer);
  tx.peer(peer.record);
  tx.event(cohort.id, `peer.${status}`, { peerId: peer.peerId });
}

/**
 * Grace is over (`now >= graceEndsAtMs`): the peer is gone and its lease is
 * lost: a death (it dropped and never came back), except for a Task Director
 * client, which cannot resume (no grace) and whose drop is only a release.
 */
export function expireGrace(state: SchedulerState, tx: CoreTx, peer: PeerState): void {
  const cohort = state.cohorts.get(peer.record.cohortId)!;
  dropLease(state, tx, cohort, peer, peer.record.resumable ? 'grace-expired' : 'client-dropped');
  leave(state, tx, cohort, peer, 'gone');
  tx.dirty.add(cohort);
}
