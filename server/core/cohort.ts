import { limits } from '../../shared/limits.js';
import { describeCancel, type CancelledBy, type CohortOutcome } from './causes.js';
import { CohortReports } from './cohort-reports.js';
import { transitionCohort } from './cohort-status.js';
import type { CoreTx } from './core-tx.js';
import type { AdminResult } from './core-types.js';
import { canRunSomeUnresolved, describeRelease, labelsOf, resolveUnshared } from './peer-labels.js';
import type { PeerState } from './peer-table.js';
import { doneWork, waitingWork } from './peer-work.js';
import type { StepRecord } from './records.js';
import { trackOpen } from './source-quota.js';
import { DispatchPlan } from './step-picker.js';
import { isResolved } from './step-status.js';
import { cohortSecondsSaved, peerSummary, summaryBase, type SummaryBase } from './summary.js';

/** The labels passed to the picker in a cohort where no step requires any (it never looks at them). */
const noLabels: ReadonlySet<string> = new Set();

/**
 * A cohort, and what it does as a whole, top to bottom: settling after every
 * input that touched it (`settle`: complete, abandon, or give idle members
 * work or a `wait`), admin cancel and retry. It owns its steps and leases
 * (cohort-data.ts), their transitions (cohort-leases.ts) and what a report of
 * one of its leases does (cohort-reports.ts): one class, split by role into
 * layers (data <- leases <- reports <- cohort). The machines:
 * cohort-status.ts, step-status.ts, lease-state.ts.
 */
export class Cohort extends CohortReports {
  /** A dependent-pipeline joiner's patchsets join the cohort's set (and the matcher's index of it). */
  addPatchsets(tx: CoreTx, patchsets: readonly string[]): void {
    const before = this.patchsets.size;
    for (const p of patchsets) tx.journal.setAdd(this.patchsets, p);
    if (this.patchsets.size === before) return;
    this.host.matcher.addPatchsets(tx.journal, this);
    tx.journal.set(this.record, { patchsets: [...this.patchsets].sort() });
    tx.cohort(this.record);
  }

  /**
   * After every input that touched the cohort: it completes when every step
   * is resolved; it ends as abandoned when every member has left on purpose
   * (bye, or closed after it was done: nobody will finish it; a member whose
   * grace ran out may come back, as a CI retry does, and keeps it open);
   * otherwise idle members get work or a `wait`.
   */
  settle(tx: CoreTx): void {
    if (this.record.lastActivityMs !== tx.now) {
      tx.journal.field(this.record, 'lastActivityMs', tx.now);
      tx.cohort(this.record);
    }
    if (this.record.status !== 'open') return;
    if (this.unresolved === 0) this.complete(tx);
    else if (this.host.peers.everyMemberLeft(this)) this.cancel(tx, 'abandoned');
    else this.dispatch(tx);
  }

  /**
   * Gives idle members work or a `wait`. Where steps require labels (peer-labels.ts),
   * a peer that can run none of the unresolved steps is released (`complete` now)
   * instead of waiting, and once nothing runs, labelled steps no connected member
   * can run are resolved `unshared` (then the cohort completes, or peers are told anew).
   */
  private dispatch(tx: CoreTx): void {
    const host = this.host;
    if (host.draining) return;
    let unassigned: PeerState[] = [];
    let nothingAssignable = false;
    if (host.peers.hasAvailable(this)) {
      if (!this.mayAssign(tx)) {
        // The picker would find nothing for anyone (labelled cohort or not): see below.
        nothingAssignable = true;
      } else {
        const plan = new DispatchPlan(host.pickContext(tx.now), this, tx.journal);
        for (const peer of host.peers.availableIn(this)) {
          host.pickerTries++;
          const choice = plan.take(peer.peerId, this.hasRequirements ? labelsOf(peer) : noLabels);
          if (choice) this.grant(tx, choice.step, peer, choice.backup);
          else unassigned.push(peer);
        }
      }
    }
    // Before anyone is released, so every peer still here hears which steps nobody could build.
    if (resolveUnshared(host, tx, this) && this.unresolved === 0) {
      this.complete(tx);
      return;
    }
    if (nothingAssignable) {
      // Members told `wait` stay as they are (not tried again, issue 17); idle ones are told to wait,
      // as trying everyone would have done. Where steps require labels, a waiting member may have to
      // be released instead, but only once a step it could run is resolved: then (a step of this
      // cohort was resolved by this input, so its counters changed) every available member is looked
      // at, in join order, as before.
      const resolvedHere = this.hasRequirements && tx.journal.valueBefore(this as Cohort, 'unresolved') !== undefined;
      unassigned = resolvedHere ? host.peers.availableIn(this) : host.peers.idleIn(this);
    }
    let base: SummaryBase | null = null;
    for (const peer of unassigned) {
      if (this.hasRequirements && !canRunSomeUnresolved(this, labelsOf(peer))) {
        tx.event(this.id, 'peer.released', { peerId: peer.peerId, detail: describeRelease(this, labelsOf(peer)) });
        this.sendComplete(tx, peer, (base ??= this.summaryBase()));
      } else if (peer.work.kind !== 'waiting') {
        host.peers.setWork(tx, peer, waitingWork);
        if (peer.connId !== null) tx.emit({ kind: 'wait', connId: peer.connId, ...this.waitFor(tx.now) });
      }
    }
  }

  /**
   * Whether the picker (step-picker.ts) could give some member anything now: a step is ready, or a
   * live lease may be past its backup time. A backup waits at least `stragglerMinMs` from its
   * lease's start, so none can while the oldest live lease is younger than that. O(log n).
   */
  private mayAssign(tx: CoreTx): boolean {
    if (this.ready.hasReady(tx.journal)) return true;
    const config = this.host.config;
    if (config.stragglerFactor <= 0) return false;
    const oldestMs = this.oldestLiveStartMs(tx.journal);
    return oldestMs !== null && oldestMs + config.stragglerMinMs <= tx.now;
  }

  /** What a waiting peer is told: each live lease with its holder and its age at `nowMs`. */
  private waitFor(nowMs: number): { cohortId: string; running: { stepId: string; peerId: string; heldMs: number }[]; unresolved: number } {
    const running: { stepId: string; peerId: string; heldMs: number }[] = [];
    for (const [stepId, live] of this.liveLeases) {
      for (const lease of live) if (running.length < limits.maxWaitEntries) running.push({ stepId, peerId: lease.peerId, heldMs: Math.max(0, nowMs - lease.startedAtMs) });
    }
    return { cohortId: this.id, running, unresolved: this.unresolved };
  }

  private complete(tx: CoreTx): void {
    const outcome: CohortOutcome = this.failedCount > 0 ? { kind: 'failed', failedSteps: this.failedCount } : { kind: 'succeeded' };
    const saved = cohortSecondsSaved(this, (c, s) => this.host.estimateMs(c, s));
    transitionCohort(tx.journal, this.record, 'complete');
    tx.journal.set(this.record, { resolvedAtMs: tx.now, outcome, secondsSaved: saved });
    this.host.refile(tx.journal, this);
    tx.cohort(this.record);
    tx.event(this.id, 'cohort.complete', { detail: `${outcome.kind}, ${saved} s saved` });
    tx.stat('seconds.saved', saved);
    this.completeConnectedPeers(tx);
  }

  /**
   * `complete` to every connected member not told yet (the others get it when they resume or join),
   * their summaries made from one {@link SummaryBase}.
   */
  private completeConnectedPeers(tx: CoreTx): void {
    let base: SummaryBase | null = null;
    for (const peer of this.host.peers.members(this)) {
      if (peer.record.status === 'connected' && peer.work.kind !== 'done') this.sendComplete(tx, peer, (base ??= this.summaryBase()));
    }
  }

  private summaryBase(): SummaryBase {
    return summaryBase(this.self, (c, s) => this.host.estimateMs(c, s));
  }

  /**
   * Tells a peer `complete` with its summary. In an open cohort (a peer released because it can run
   * none of the unresolved steps) the outcome is what it is so far: failed if a step failed, else succeeded.
   * `base`: the cohort's summary base made in this input since its steps last changed (else made here).
   * A peer told before (it resumed after its `complete`) is told again; its runner-time stats count once.
   */
  sendComplete(tx: CoreTx, peer: PeerState, base: SummaryBase = this.summaryBase()): void {
    const open = this.record.status === 'open';
    const outcome: CohortOutcome | null = open ? (this.failedCount > 0 ? { kind: 'failed', failedSteps: this.failedCount } : { kind: 'succeeded' }) : this.record.outcome;
    if (outcome === null) throw new Error(`cohort ${this.id} is ${this.record.status} without an outcome`);
    // Told before (it resumed on a new connection after its `complete`): told again, counted once.
    const toldBefore = peer.work.kind === 'done';
    if (!toldBefore) this.host.peers.setWork(tx, peer, doneWork);
    const summary = peerSummary(this.self, base, peer.peerId, { joinedAtMs: peer.record.joinedAtMs, nowMs: tx.now }, labelsOf(peer), peer.targetedUpdates === true);
    if (peer.connId !== null) tx.emit({ kind: 'complete', connId: peer.connId, cohortId: this.id, outcome, summary });
    if (!toldBefore && outcome.kind !== 'cancelled') {
      tx.stat('runner.spent', summary.spentSec ?? 0);
      tx.stat('runner.alone', summary.aloneSec ?? 0);
    }
  }

  /** Ends the open cohort early (an admin, or abandoned): unresolved steps fail, connected members are told `complete`. */
  cancel(tx: CoreTx, by: CancelledBy): void {
    const outcome: CohortOutcome = { kind: 'cancelled', by };
    transitionCohort(tx.journal, this.record, 'cancelled');
    tx.journal.set(this.record, { resolvedAtMs: tx.now, outcome });
    for (const step of this.ordered) if (!isResolved(step.status)) this.markFailed(tx, step, { kind: 'cohort-cancelled', by });
    this.host.refile(tx.journal, this);
    tx.cohort(this.record);
    tx.event(this.id, 'cohort.cancelled', { detail: describeCancel(by) });
    this.completeConnectedPeers(tx);
  }

  /** An admin cancels the cohort: only an open one. */
  adminCancel(tx: CoreTx): AdminResult {
    if (this.record.status !== 'open') return { ok: false, status: 409, code: 'NOT_OPEN', message: `cohort ${this.id} is already ${this.record.status}` };
    this.cancel(tx, 'admin');
    return { ok: true };
  }

  /** An admin retries a failed step (not one that needs a failed step); a complete cohort opens again. */
  adminRetry(tx: CoreTx, stepId: string): AdminResult {
    const step = this.steps.get(stepId);
    if (!step) return { ok: false, status: 404, code: 'NOT_FOUND', message: `cohort ${this.id} has no step "${stepId}"` };
    if (this.record.status === 'cancelled' || step.status !== 'failed') {
      const why = this.record.status === 'cancelled' ? `cohort ${this.id} is cancelled` : `step "${stepId}" is ${step.status}; only a failed step can be retried`;
      return { ok: false, status: 409, code: 'NOT_FAILED', message: why };
    }
    const failedNeed = this.firstFailedNeed(stepId);
    if (failedNeed !== null) return { ok: false, status: 409, code: 'NEEDS_FAILED', message: `step "${stepId}" needs "${failedNeed}", which failed; retry "${failedNeed}" instead` };
    if (this.record.status === 'complete') {
      transitionCohort(tx.journal, this.record, 'open');
      tx.journal.set(this.record, { resolvedAtMs: null, outcome: null, secondsSaved: null });
      tx.cohort(this.record);
    }
    this.reopen(tx, step);
    trackOpen(this.host, tx.journal, this);
    this.host.refile(tx.journal, this);
    tx.event(this.id, 'step.admin-retry', { stepId });
    this.broadcast(tx, { cohortId: this.id, stepId, state: 'pending', peerId: null, fromMemo: false, cause: { kind: 'admin-retry' } });
    tx.dirty.add(this);
    return { ok: true };
  }

  private firstFailedNeed(stepId: string): string | null {
    return this.needsOf(stepId).find((need) => this.steps.get(need)!.status === 'failed') ?? null;
  }

  /**
   * A failed step goes back to pending with a clean failure history, and so do
   * the steps that failed only because they need it, once none of their needs
   * is failed. A dependent that still needs another failed step stays failed,
   * its cause naming that step (issue 10, defect 1).
   */
  private reopen(tx: CoreTx, step: StepRecord): void {
    tx.journal.set(step, { failures: 0, lostLeases: 0, failedOn: [], failCause: null, failPeerId: null, failExitCode: null, failLogTail: null, resolvedAtMs: null });
    this.count(tx.journal, +1, -1);
    this.toPending(tx, step);
    for (const dependentId of this.dependents.get(step.stepId)!) {
      const dependent = this.steps.get(dependentId)!;
      if (dependent.status !== 'failed' || dependent.failCause?.kind !== 'need-failed') continue;
      const stillFailed = this.firstFailedNeed(dependentId);
      if (stillFailed === null) {
        this.reopen(tx, dependent);
      } else if (dependent.failCause.need !== stillFailed) {
        tx.journal.set(dependent, { failCause: { kind: 'need-failed', need: stillFailed } });
        tx.step(dependent);
      }
    }
  }
}
