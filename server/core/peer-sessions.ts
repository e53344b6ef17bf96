import type { LeaseLossWhy } from './causes.js';
import type { Cohort } from './cohort.js';
import { createCohort } from './cohort-factory.js';
import type { AloneReason } from './cohort-matcher.js';
import type { CoreTx } from './core-tx.js';
import type { CoreInput } from './core-types.js';
import type { ConnId, Effect } from './effects.js';
import { PeerTable, type PeerState } from './peer-table.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { PeerRecord } from './records.js';
import { quotaRefusal } from './source-quota.js';
import { isResolved } from './step-status.js';

/**
 * Peer sessions: the inputs a peer's connection drives, each read top to
 * bottom here: hello (join a matching cohort or create one, or resume a
 * registration with its resume token or the registration token the peer chose
 * for it; duplicate peer ids), the connection side of a
 * `step.finished` (which peer and which lease; the cohort owns the rest),
 * drops with a grace period, bye, and the end of grace. A peer's connection,
 * grace and work state change only through {@link PeerTable}; what happens to
 * its lease is its cohort's transition (cohort-leases.ts). Machines:
 * peer-status.ts (the persisted registration) and peer-work.ts.
 */

export type HelloInput = Extract<CoreInput, { kind: 'hello' }>;
export type FinishedInput = Extract<CoreInput, { kind: 'finished' }>;

export class PeerSessions extends PeerTable {
  hello(tx: CoreTx, input: HelloInput): void {
    if (this.host.draining) {
      // Draining is the core's one flag: no joins or resumes; the peer reconnects to whoever serves next.
      tx.refuse(input.connId, { kind: 'shutting-down' });
      return;
    }
    const joinedHere = this.connections.get(input.connId);
    if (joinedHere) {
      tx.refuse(input.connId, { kind: 'already-joined', peerId: joinedHere.peerId });
      return;
    }
    const existing = this.byId.get(input.peerId);
    const active = existing && (existing.record.status === 'connected' || existing.record.status === 'disconnected');
    if (existing && active) {
      // Its resume token, or the registration token it chose (its join committed, its welcome lost).
      const matched = [input.presentedToken, input.registrationToken ?? null].find((t) => t !== null && t.hash === existing.record.tokenHash);
      if (matched) {
        this.resume(tx, existing, input, matched.token, matched === input.presentedToken ? 'resume-token' : 'registration-token');
        return;
      }
      tx.refuse(input.connId, { kind: 'duplicate-peer', peerId: input.peerId, heldBy: existing.record.status === 'connected' ? 'connection' : 'grace' });
      return;
    }
    this.join(tx, input);
  }

  /**
   * Resumes a registration. By its registration token, the peer never had a welcome, so never an
   * `assign` either (both ride the same connection, welcome first): a lease it holds is sent again,
   * not lost. By its resume token, a held lease it does not name as its current step is released.
   */
  private resume(tx: CoreTx, peer: PeerState, input: HelloInput, token: string, by: 'resume-token' | 'registration-token'): void {
    const cohort = this.host.cohorts.get(peer.record.cohortId)!;
    if (cohort.record.digest !== input.digest) {
      tx.refuse(input.connId, { kind: 'schema-mismatch', cohortId: cohort.id, schemaId: cohort.record.schema.id, digest: cohort.record.digest, presented: input.digest });
      return;
    }
    if (peer.connId !== null) {
      tx.emit({ kind: 'superseded', connId: peer.connId });
      this.supersede(tx.journal, peer.connId);
    }
    if ((peer.targetedUpdates === true) !== (input.targetedUpdates === true)) tx.journal.set(peer, { targetedUpdates: input.targetedUpdates === true });
    this.setConnection(tx.journal, peer, input.connId);
    if (peer.record.status !== 'connected') this.setStatus(tx.journal, peer, 'connected');
    tx.journal.set(peer.record, { graceEndsAtMs: null });
    if (peer.work.kind === 'waiting') this.setWork(tx, peer, idleWork);
    this.leaveGrace(tx.journal, peer);
    tx.peer(peer.record);
    tx.event(cohort.id, 'peer.resumed', { peerId: peer.peerId });

    const current = input.currentStep;
    const held = heldLeaseId(peer.work);
    const resend = held !== null && current?.leaseId !== held && by === 'registration-token' ? cohort.leases.get(held)! : null;
    if (held !== null) {
      if (current?.leaseId !== held && resend === null) cohort.loseLease(tx, cohort.leases.get(held)!, 'not-resumed');
    } else if (current && !(peer.work.kind === 'orphaned' && peer.work.leaseId === current.leaseId)) {
      this.adoptOrphan(tx, cohort, peer, current);
    }
    tx.emit(this.joined(cohort, peer, input.connId, token, true));
    if (resend !== null) {
      const { stepId, leaseId, attempt, backup } = resend;
      tx.emit({ kind: 'granted', connId: input.connId, cohortId: cohort.id, stepId, leaseId, attempt, backup });
    }
    if (cohort.record.status !== 'open') cohort.sendComplete(tx, peer);
    tx.dirty.add(cohort);
  }

  private join(tx: CoreTx, input: HelloInput): void {
    const reg = input.registration;
    const previous = this.byId.get(input.peerId);
    let cohort = this.host.matcher.find(reg, input.digest, input.presentedToken !== null);
    if (!cohort) {
      const refusal = quotaRefusal(this.host, tx.journal, reg, input.schema.steps.length);
      if (refusal !== null) {
        tx.refuse(input.connId, refusal);
        return;
      }
      cohort = createCohort(this.host, tx, input);
    }
    if (reg.pipelineType === 'dependent') cohort.addPatchsets(tx, reg.patchsets);
    if (previous) this.leaveGrace(tx.journal, previous);
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
    const peer: PeerState = { peerId: input.peerId, record, connId: null, work: idleWork, ...(input.targetedUpdates === true ? { targetedUpdates: true } : {}) };
    this.add(tx.journal, peer);
    this.setConnection(tx.journal, peer, input.connId);
    cohort.addMember(tx.journal, input.peerId, reg);
    tx.peer(record);
    tx.event(cohort.id, 'peer.joined', { peerId: input.peerId, detail: `${cohort.members.size} peers` });
    if (input.currentStep) this.adoptOrphan(tx, cohort, peer, input.currentStep);
    tx.emit(this.joined(cohort, peer, input.connId, input.freshToken.token, false, this.whyAlone(cohort, input)));
    if (cohort.record.status !== 'open') cohort.sendComplete(tx, peer);
    tx.dirty.add(cohort);
  }

  /**
   * The peer says it is running a step under a lease the authority no longer
   * counts as live. Let it finish when the step is unresolved (its completion
   * may still count); tell it to stop when the step is already resolved.
   */
  private adoptOrphan(tx: CoreTx, cohort: Cohort, peer: PeerState, current: { stepId: string; leaseId: string }): void {
    const step = cohort.steps.get(current.stepId);
    if (step && isResolved(step.status)) {
      if (peer.connId !== null) tx.emit({ kind: 'abort', connId: peer.connId, stepId: current.stepId, leaseId: current.leaseId, why: 'lease-lost' });
      return;
    }
    this.setWork(tx, peer, { kind: 'orphaned', stepId: current.stepId, leaseId: current.leaseId });
  }

  /**
   * When the joiner is alone in its cohort, why it could have had company: one
   * reason per group of open cohorts that differ from it in one fixable way,
   * with the number of active peers in them (worded by the transport).
   */
  private whyAlone(cohort: Cohort, input: HelloInput): AloneReason[] {
    if (this.activeMembers(cohort) !== 1) return [];
    const groups = new Map<string, AloneReason>();
    for (const found of this.host.matcher.companyElsewhere(input.registration, input.schema.id, input.digest)) {
      const peers = this.activeMembers(found.cohort);
      if (peers === 0) continue;
      const { cohort: _c, ...difference } = found;
      const key = JSON.stringify(difference);
      const seen = groups.get(key);
      groups.set(key, { ...difference, peers: (seen?.peers ?? 0) + peers });
    }
    return [...groups.values()].slice(0, 8);
  }

  private joined(cohort: Cohort, peer: PeerState, connId: ConnId, resumeToken: string, resumed: boolean, alone: readonly AloneReason[] = []): Effect {
    return {
      kind: 'joined',
      connId,
      peerId: peer.peerId,
      resumeToken,
      resumed,
      cohort: {
        id: cohort.id,
        peers: this.activeMembers(cohort),
        steps: cohort.ordered.length,
        resolved: cohort.ordered.length - cohort.unresolved,
        succeeded: succeededSteps(cohort),
      },
      pingIntervalMs: this.host.config.pingIntervalMs,
      ...(alone.length > 0 ? { alone: [...alone] } : {}),
    };
  }

  /**
   * A `step.finished` (or a Task Director TASK_COMPLETE), its connection side:
   * which peer joined on the connection and which lease it reports (a report
   * naming no lease, from Task Director, is for the lease the peer holds). The
   * lease's cohort fences the rest and makes the transition (`Cohort.finish`).
   */
  finished(tx: CoreTx, input: FinishedInput): void {
    if (this.superseded.has(input.connId)) return; // a replaced connection; its socket is closing
    const peer = this.connections.get(input.connId);
    if (!peer) {
      tx.refuse(input.connId, { kind: 'not-joined' });
      return;
    }
    const ownCohort = this.host.cohorts.get(peer.record.cohortId);
    if (ownCohort) tx.dirty.add(ownCohort);

    const heldId = heldLeaseId(peer.work);
    if (input.leaseId === null && heldId === null) {
      tx.refuse(input.connId, { kind: 'no-lease-held', stepId: input.stepId });
      return;
    }
    const leaseId = input.leaseId ?? heldId!;
    if (peer.work.kind === 'orphaned' && peer.work.leaseId === leaseId) this.setWork(tx, peer, idleWork);
    const owner = this.host.leaseOwners.get(leaseId);
    if (!owner) {
      tx.refuse(input.connId, { kind: 'stale-lease', leaseId, stepId: input.stepId, why: 'unknown', ok: input.ok });
      return;
    }
    owner.finish(tx, peer, owner.leases.get(leaseId)!, input);
  }

  disconnected(tx: CoreTx, connId: ConnId): void {
    if (this.superseded.has(connId)) {
      tx.journal.setDelete(this.superseded, connId);
      return;
    }
    const peer = this.connections.get(connId);
    if (!peer) return; // no hello was accepted on it, or its peer already left (bye)
    this.setConnection(tx.journal, peer, null);
    if (peer.work.kind === 'waiting') this.setWork(tx, peer, idleWork);
    const cohort = this.host.cohorts.get(peer.record.cohortId)!;
    tx.dirty.add(cohort);
    if (peer.work.kind === 'done') {
      this.leave(tx, cohort, peer, 'left');
      return;
    }
    const graceEndsAtMs = tx.now + (peer.record.resumable ? this.host.config.leaseGraceMs : 0);
    this.setStatus(tx.journal, peer, 'disconnected');
    tx.journal.set(peer.record, { graceEndsAtMs });
    this.enterGrace(tx.journal, peer, graceEndsAtMs);
    tx.peer(peer.record);
    tx.event(cohort.id, 'peer.disconnected', { peerId: peer.peerId, detail: `grace until ${graceEndsAtMs}` });
    if (graceEndsAtMs <= tx.now) this.expireGrace(tx, peer);
  }

  bye(tx: CoreTx, connId: ConnId): void {
    const peer = this.connections.get(connId);
    if (!peer) return; // a bye before hello, or on a replaced connection: the socket closes either way
    const cohort = this.host.cohorts.get(peer.record.cohortId)!;
    tx.dirty.add(cohort);
    this.dropLease(tx, cohort, peer, 'bye');
    this.leave(tx, cohort, peer, 'left');
  }

  /** A tick: every grace period that has ended (`now >= graceEndsAtMs`), from the min-heap. */
  expireDue(tx: CoreTx): void {
    for (let top = this.graceDeadlines.peek(); top !== null && top.atMs <= tx.now; top = this.graceDeadlines.peek()) {
      this.graceDeadlines.pop(tx.journal);
      if (this.graceEntryValid(top.value, top.atMs)) this.expireGrace(tx, top.value);
    }
  }

  /**
   * Grace is over (`now >= graceEndsAtMs`): the peer is gone and its lease is
   * lost: a death (it dropped and never came back), except for a Task Director
   * client, which cannot resume (no grace) and whose drop is only a release.
   */
  private expireGrace(tx: CoreTx, peer: PeerState): void {
    const cohort = this.host.cohorts.get(peer.record.cohortId)!;
    this.dropLease(tx, cohort, peer, peer.record.resumable ? 'grace-expired' : 'client-dropped');
    this.leave(tx, cohort, peer, 'gone');
    tx.dirty.add(cohort);
  }

  private dropLease(tx: CoreTx, cohort: Cohort, peer: PeerState, why: LeaseLossWhy): void {
    const held = heldLeaseId(peer.work);
    if (held !== null) cohort.loseLease(tx, cohort.leases.get(held)!, why);
  }

  private leave(tx: CoreTx, cohort: Cohort, peer: PeerState, status: 'gone' | 'left'): void {
    this.setConnection(tx.journal, peer, null);
    if (peer.work.kind === 'orphaned' || peer.work.kind === 'waiting') this.setWork(tx, peer, idleWork);
    this.setStatus(tx.journal, peer, status);
    tx.journal.set(peer.record, { graceEndsAtMs: null });
    this.leaveGrace(tx.journal, peer);
    tx.peer(peer.record);
    tx.event(cohort.id, `peer.${status}`, { peerId: peer.peerId });
  }
}

/** The cohort's succeeded steps, in schema order, for a welcome (none while nothing is resolved: no walk over its steps). */
function succeededSteps(cohort: Cohort): { stepId: string; peerId: string | null; fromMemo: boolean }[] {
  const out: { stepId: string; peerId: string | null; fromMemo: boolean }[] = [];
  if (cohort.unresolved === cohort.ordered.length) return out;
  for (const s of cohort.ordered) if (s.status === 'succeeded') out.push({ stepId: s.stepId, peerId: s.builtBy, fromMemo: s.fromMemo });
  return out;
}
