import { describeLoss, describeStepFailure, isDeath, type AbortWhy, type LeaseEnd, type LeaseLossWhy, type StepFailCause } from './causes.js';
import { CohortData } from './cohort-data.js';
import type { CoreTx } from './core-tx.js';
import type { Journal } from './journal.js';
import type { StepChange } from './effects.js';
import { transitionLease } from './lease-state.js';
import type { PeerState } from './peer-table.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { LeaseRecord, StepRecord } from './records.js';
import { armStraggler } from './straggler-deadlines.js';
import { transitionStep } from './step-status.js';

/**
 * The transitions of a cohort's steps and leases, owned by the cohort: grant a
 * lease, end it (a report, a loss, an abort, its age), give the step back, fail
 * it for the cohort with everything that needs it. The holder's work state
 * follows through the peer table (peer-table.ts `setWork`), the only way it
 * changes. The machines: step-status.ts and lease-state.ts. What the cohort
 * does per input (a report, settling after every input, admin) is cohort.ts.
 */

/**
 * Leases of a step that may end "built but not published" before such an end counts as a failed
 * attempt: a cache that rejects every write must not keep a step going round for ever.
 */
export const maxUnpublishedAttempts = 3;

export class CohortLeases extends CohortData {
  /**
   * Indexes a lease (new or restored) as the cohort's, and routes its id here; a live one joins its step's
   * live list and, while a member of the cohort waits, gets a straggler deadline (straggler-deadlines.ts).
   */
  addLease(journal: Journal, lease: LeaseRecord): void {
    journal.mapSet(this.leases, lease.leaseId, lease);
    journal.mapSet(this.host.leaseOwners, lease.leaseId, this.self);
    if (lease.end !== null) return;
    const live = this.liveLeases.get(lease.stepId);
    journal.mapSet(this.liveLeases, lease.stepId, live === undefined ? [lease] : [...live, lease]);
    this.liveStarts.push(lease);
    // A backup only matters to a waiting peer: with nobody waiting the entry would be dropped when it
    // came up, and the cohort's first waiter arms every live lease then (peer-table.ts `setWork`).
    if (this.host.peers.hasWaitingMember(this)) armStraggler(this.host, this.self, lease.leaseId);
  }

  private removeLive(journal: Journal, lease: LeaseRecord): void {
    const list = this.liveLeases.get(lease.stepId);
    if (!list) return;
    const rest = list.length === 1 && list[0]!.leaseId === lease.leaseId ? [] : list.filter((l) => l.leaseId !== lease.leaseId);
    if (rest.length === 0) journal.mapDelete(this.liveLeases, lease.stepId);
    else journal.mapSet(this.liveLeases, lease.stepId, rest);
  }

  /** Leases the step to an idle member (a second, `backup`, copy of a straggler's step). */
  grant(tx: CoreTx, step: StepRecord, peer: PeerState, backup: boolean): void {
    const host = this.host;
    tx.journal.field(step, 'attempts', step.attempts + 1);
    const lease: LeaseRecord = {
      leaseId: host.ids.leaseId(),
      cohortId: this.id,
      stepId: step.stepId,
      peerId: peer.peerId,
      attempt: step.attempts,
      backup,
      startedAtMs: tx.now,
      endedAtMs: null,
      end: null,
    };
    if (step.status === 'pending') transitionStep(tx.journal, step, 'leased');
    this.addLease(tx.journal, lease);
    host.peers.setWork(tx, peer, { kind: 'running', leaseId: lease.leaseId });
    // No step row: the lease row says the step is leased and its attempts (the store derives both, lease-events.ts).
    tx.lease(lease);
    host.leaseAgeDeadlines.push(lease.startedAtMs + host.maxLeaseAgeMs(this, step.stepId), lease);
    tx.event(this.id, 'step.leased', { stepId: step.stepId, peerId: lease.peerId, detail: `attempt ${lease.attempt}${backup ? ', backup copy' : ''}`, leaseId: lease.leaseId });
    tx.stat('step.assigned');
    if (peer.connId !== null) tx.emit({ kind: 'granted', connId: peer.connId, cohortId: this.id, stepId: step.stepId, leaseId: lease.leaseId, attempt: lease.attempt, backup });
  }

  /** Ends a live lease; its holder, if it still runs it, becomes idle. */
  endLease(tx: CoreTx, lease: LeaseRecord, end: LeaseEnd): void {
    transitionLease(tx.journal, lease, end, tx.now);
    this.removeLive(tx.journal, lease);
    tx.lease(lease);
    const holder = this.host.peers.get(lease.peerId);
    if (holder && heldLeaseId(holder.work) === lease.leaseId) this.host.peers.setWork(tx, holder, idleWork);
  }

  /** Ends a live copy that is no longer wanted and tells its holder to stop. */
  abortLease(tx: CoreTx, lease: LeaseRecord, why: AbortWhy): void {
    this.endLease(tx, lease, { kind: 'aborted', why });
    tx.event(this.id, 'lease.aborted', { stepId: lease.stepId, peerId: lease.peerId, detail: why, leaseId: lease.leaseId });
    const connId = this.host.peers.get(lease.peerId)?.connId ?? null;
    if (connId !== null) tx.emit({ kind: 'abort', connId, stepId: lease.stepId, leaseId: lease.leaseId, why });
    tx.dirty.add(this.self);
  }

  /** Members still running the step under a lease the authority no longer counts (orphaned) are told to stop. */
  abortOrphans(tx: CoreTx, stepId: string): void {
    if (this.host.peers.orphaned.size === 0) return;
    for (const peer of [...this.host.peers.orphaned]) {
      if (peer.work.kind !== 'orphaned' || peer.work.stepId !== stepId || peer.record.cohortId !== this.id || this.host.peers.get(peer.peerId) !== peer) continue;
      if (peer.connId !== null) tx.emit({ kind: 'abort', connId: peer.connId, stepId, leaseId: peer.work.leaseId, why: 'superseded' });
      this.host.peers.setWork(tx, peer, idleWork);
    }
  }

  /**
   * The holder stopped running it: the lease ends; the step goes back to pending
   * unless another copy runs. Only a death (causes.ts `isDeath`) counts toward
   * `maxLostLeases`; a release by a live holder never fails the step.
   */
  loseLease(tx: CoreTx, lease: LeaseRecord, why: LeaseLossWhy): void {
    this.endLease(tx, lease, { kind: 'lost', why });
    tx.event(this.id, 'lease.lost', { stepId: lease.stepId, peerId: lease.peerId, detail: describeLoss(why), leaseId: lease.leaseId });
    tx.stat(isDeath(why) ? 'lease.expired' : 'lease.released');
    const step = this.steps.get(lease.stepId)!;
    if (step.status === 'leased' && this.live(step.stepId).length === 0) this.returnToPending(tx, step, why);
    tx.dirty.add(this.self);
  }

  /** A leased step with no live copy left goes back to pending; a death counts toward `maxLostLeases`. */
  returnToPending(tx: CoreTx, step: StepRecord, why: LeaseLossWhy): void {
    const death = isDeath(why);
    if (death) tx.journal.set(step, { lostLeases: step.lostLeases + 1 });
    this.toPending(tx, step);
    if (death && step.lostLeases >= this.host.config.maxLostLeases) this.failStep(tx, step, { kind: 'lost-too-often', lostLeases: step.lostLeases, last: why });
  }

  /** The step is pending again (its rank's fields already set): it joins the ready queue if its needs are met. */
  protected toPending(tx: CoreTx, step: StepRecord): void {
    transitionStep(tx.journal, step, 'pending');
    tx.step(step);
    this.ready.offer(step);
  }

  /**
   * A lease passed its max age (`now >= startedAtMs + maxLeaseAgeMs`) while its
   * holder, connected or in grace, never finished it: it ends (`aborted`, why
   * `max-age`), the holder is told to stop, and the step is leased again, to
   * another peer where there is one, with 4 × the time (so a step that truly
   * runs long finishes on a later lease). Not a death and not a failure: it
   * counts toward neither `maxLostLeases` nor `maxFailures`.
   */
  expireLeaseAge(tx: CoreTx, lease: LeaseRecord, limitMs: number): void {
    const step = this.steps.get(lease.stepId)!;
    this.abortLease(tx, lease, 'max-age');
    tx.event(this.id, 'lease.timed-out', { stepId: lease.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} ran ${tx.now - lease.startedAtMs} ms, past its max age of ${limitMs} ms; leasing the step again` });
    tx.stat('lease.timed-out');
    tx.journal.mapSet(this.leaseTimeouts, step.stepId, (this.leaseTimeouts.get(step.stepId) ?? 0) + 1);
    tx.journal.set(step, { failedOn: step.failedOn.includes(lease.peerId) ? step.failedOn : [...step.failedOn, lease.peerId] });
    tx.step(step);
    if (step.status === 'leased' && this.live(step.stepId).length === 0) this.toPending(tx, step);
  }

  /** Resolves a step as failed: live copies are aborted; the caller says who is told. */
  markFailed(tx: CoreTx, step: StepRecord, cause: StepFailCause): void {
    for (const lease of [...this.live(step.stepId)]) this.abortLease(tx, lease, 'cancelled');
    transitionStep(tx.journal, step, 'failed');
    tx.journal.set(step, { failCause: cause, resolvedAtMs: tx.now });
    this.count(tx.journal, -1, +1);
    tx.step(step);
  }

  /** Fails a step for the cohort, tells every member, and fails what is pending and needs it. */
  failStep(tx: CoreTx, step: StepRecord, cause: StepFailCause): void {
    this.markFailed(tx, step, cause);
    tx.event(this.id, 'step.failed', { stepId: step.stepId, peerId: step.failPeerId, detail: describeStepFailure(cause) });
    tx.stat('step.failed');
    this.broadcast(tx, {
      cohortId: this.id,
      stepId: step.stepId,
      state: 'failed',
      peerId: step.failPeerId,
      fromMemo: false,
      exitCode: step.failExitCode,
      ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
      cause: { kind: 'failed', cause },
    });
    for (const dependentId of this.dependents.get(step.stepId)!) {
      const dependent = this.steps.get(dependentId)!;
      if (dependent.status === 'pending') this.failStep(tx, dependent, { kind: 'need-failed', need: step.stepId });
    }
  }

  /**
   * A step change, told to the connected members of the cohort that still need it: never to one told
   * `complete` already (a peer released because it can run none of what is left never hears of it).
   * A failure or a reopened step reaches every such member; a success reaches the members that hear
   * every success (no `targetedUpdates`, or waiting) and its builder (peer-table.ts `successConnections`).
   */
  broadcast(tx: CoreTx, change: StepChange): void {
    const connIds = change.state === 'succeeded' ? this.host.peers.successConnections(this, change.peerId) : this.host.peers.workingConnections(this);
    if (connIds.length > 0) tx.emit({ kind: 'step-changed', connIds, change });
  }
}
