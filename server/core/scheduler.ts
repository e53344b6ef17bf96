import { closeCodes } from '../../shared/close-codes.js';
import { limits } from '../../shared/limits.js';
import { protocolVersion, type ServerMessage, type Wait, type Welcome } from '../../shared/protocol.js';
import { Cohort } from './cohort.js';
import { CohortMatcher } from './cohort-matcher.js';
import { CoreTx } from './core-tx.js';
import type { ConnId, CoreConfig, CoreInput, CoreOutput, IdSource } from './core-types.js';
import { criticalPathMs } from './priority.js';
import type { CohortRecord, DurationRecord, LeaseOutcome, LeaseRecord, MemoRecord, PeerRecord, Snapshot, StepRecord } from './records.js';
import { durationKey, memoKey, patchsetSet } from './source-state.js';
import { DispatchPlan, stragglerAtMs, type PickContext } from './step-picker.js';
import { isResolved, transitionStep } from './step-status.js';
import { cohortSecondsSaved, peerSummary } from './summary.js';

/**
 * The scheduler: a deterministic state machine, `handle(input, now) -> { writes, effects }`.
 *
 * Peer states: connected -> disconnected (grace) -> connected (resumed) | gone;
 *              connected -> left (bye, or disconnected after `complete`).
 * Lease states: live -> succeeded | failed | lost | aborted (final).
 * Invariants (checked by the property test):
 * - a step is `leased` iff it has a live lease; at most two live leases, the second a backup;
 * - `succeeded` is final and written once (the store's UNIQUE constraint backs this);
 * - attempt numbers of a step's leases only rise;
 * - a peer holds at most one live lease; a lost lease's completion counts only
 *   while its step is unresolved.
 * Time is the `now` argument; ids come from the injected {@link IdSource}.
 */

/** A peer as the scheduler tracks it: its persisted record plus connection-bound state. */
interface PeerState {
  readonly record: PeerRecord;
  connId: ConnId | null;
  /** The live lease this peer holds. */
  leaseId: string | null;
  /** A step the peer is still running under a lease it lost (reported on resume). */
  orphan: { readonly stepId: string; readonly leaseId: string } | null;
  /** Told `wait` and not assigned since. */
  waiting: boolean;
  /** Told `complete`. */
  done: boolean;
}

type HelloInput = Extract<CoreInput, { kind: 'hello' }>;
type FinishedInput = Extract<CoreInput, { kind: 'finished' }>;

export class Scheduler {
  private readonly cohorts = new Map<string, Cohort>();
  private readonly peers = new Map<string, PeerState>();
  private readonly leases = new Map<string, LeaseRecord>();
  private readonly memos = new Map<string, MemoRecord>();
  private readonly durations = new Map<string, DurationRecord>();
  private readonly matcher = new CohortMatcher();
  /** Peers in their grace period. */
  private readonly inGrace = new Set<PeerState>();
  private draining = false;
  private nextSweepAtMs = 0;
  private lastNow = 0;

  constructor(
    private readonly config: CoreConfig,
    private readonly ids: IdSource,
  ) {}

  // ---- entry points --------------------------------------------------------

  /** Rebuilds state from the store after a restart: every peer comes back disconnected, in grace. */
  restore(snapshot: Snapshot, now: number): CoreOutput {
    const tx = new CoreTx(now);
    this.lastNow = now;
    for (const d of snapshot.durations) this.durations.set(d.durationKey, { ...d });
    for (const m of snapshot.memos) if (now < m.expiresAtMs) this.memos.set(m.memoKey, m);
    const stepsByCohort = new Map<string, StepRecord[]>();
    for (const s of snapshot.steps) {
      const list = stepsByCohort.get(s.cohortId);
      if (list) list.push(s);
      else stepsByCohort.set(s.cohortId, [s]);
    }
    for (const record of snapshot.cohorts) {
      const cohort = new Cohort(record, stepsByCohort.get(record.cohortId) ?? []);
      this.indexCohort(cohort);
    }
    for (const lease of snapshot.leases) {
      const cohort = this.cohorts.get(lease.cohortId);
      if (!cohort) continue;
      this.leases.set(lease.leaseId, lease);
      if (lease.outcome === null) cohort.addLive(lease);
    }
    for (const record of snapshot.peers) {
      const cohort = this.cohorts.get(record.cohortId);
      if (!cohort) continue;
      cohort.members.add(record.peerId);
      cohort.addRepos(record.registration);
      const peer: PeerState = { record, connId: null, leaseId: null, orphan: null, waiting: false, done: false };
      this.peers.set(record.peerId, peer);
      if (record.status === 'connected' || record.status === 'disconnected') {
        record.status = 'disconnected';
        record.graceEndsAtMs = now + (record.resumable ? this.config.leaseGraceMs : 0);
        this.inGrace.add(peer);
        tx.peer(record);
      }
    }
    for (const cohort of this.cohorts.values()) {
      for (const live of [...cohort.liveLeases.values()]) {
        for (const lease of live) {
          const holder = this.peers.get(lease.peerId);
          if (holder && holder.record.cohortId === cohort.id && this.inGrace.has(holder) && holder.leaseId === null) holder.leaseId = lease.leaseId;
          else this.endLease(tx, cohort, lease, 'lost');
        }
      }
      for (const step of cohort.ordered) {
        // A lease whose holder is not coming back, or a leased step without a live lease row.
        if (step.status === 'leased' && cohort.live(step.stepId).length === 0) this.returnToPending(tx, cohort, step, 'its peer is gone after a restart');
      }
    }
    this.nextSweepAtMs = now;
    return tx.output();
  }

  handle(input: CoreInput, now: number): CoreOutput {
    const tx = new CoreTx(now);
    this.lastNow = now;
    if (this.nextSweepAtMs === 0) this.nextSweepAtMs = now + this.config.sweepIntervalMs;
    switch (input.kind) {
      case 'hello':
        this.onHello(tx, input);
        break;
      case 'finished':
        this.onFinished(tx, input);
        break;
      case 'disconnected':
        this.onDisconnected(tx, input.connId, input.peerId);
        break;
      case 'bye':
        this.onBye(tx, input.connId, input.peerId);
        break;
      case 'tick':
        this.onTick(tx);
        break;
      case 'drain':
        this.draining = true;
        break;
      case 'cancel':
        this.onCancel(tx, input.cohortId);
        break;
      case 'retry':
        this.onRetry(tx, input.cohortId, input.stepId);
        break;
    }
    this.settle(tx);
    return tx.output();
  }

  /** The next time `tick` has work to do, or null. */
  nextDeadlineMs(): number | null {
    let next: number | null = null;
    const consider = (at: number): void => {
      if (next === null || at < next) next = at;
    };
    for (const peer of this.inGrace) if (peer.record.graceEndsAtMs !== null) consider(peer.record.graceEndsAtMs);
    const ctx = this.pickContext(this.lastNow);
    for (const cohort of this.cohorts.values()) {
      if (cohort.record.status !== 'open' || !this.hasWaitingPeer(cohort)) continue;
      for (const [stepId] of cohort.liveLeases) {
        const at = stragglerAtMs(ctx, cohort, cohort.steps.get(stepId)!);
        if (at !== null && at > this.lastNow) consider(at);
      }
    }
    if (this.memos.size > 0 || this.cohorts.size > 0) consider(this.nextSweepAtMs);
    return next;
  }

  /** Gauges for metrics. */
  counts(): { peersConnected: number; cohortsOpen: number; leasesLive: number } {
    let peersConnected = 0;
    for (const p of this.peers.values()) if (p.record.status === 'connected') peersConnected++;
    let cohortsOpen = 0;
    let leasesLive = 0;
    for (const c of this.cohorts.values()) {
      if (c.record.status === 'open') cohortsOpen++;
      for (const live of c.liveLeases.values()) leasesLive += live.length;
    }
    return { peersConnected, cohortsOpen, leasesLive };
  }

  /** Whether the peer id is held by a live registration (connected or in grace). */
  peerConnId(peerId: string): ConnId | null {
    return this.peers.get(peerId)?.connId ?? null;
  }

  // ---- hello: join or resume ----------------------------------------------

  private onHello(tx: CoreTx, input: HelloInput): void {
    const existing = this.peers.get(input.peerId);
    const active = existing && (existing.record.status === 'connected' || existing.record.status === 'disconnected');
    if (existing && active) {
      if (input.presentedToken && input.presentedToken.hash === existing.record.tokenHash) {
        this.resume(tx, existing, input);
        return;
      }
      tx.error(input.connId, {
        code: 'DUPLICATE_PEER',
        message: `peer id "${input.peerId}" is held by another ${existing.record.status === 'connected' ? 'connection' : 'peer in its grace period'}; resume with its token or use another peer id`,
      });
      return;
    }
    this.join(tx, input, existing ?? null);
  }

  private resume(tx: CoreTx, peer: PeerState, input: HelloInput): void {
    const cohort = this.cohorts.get(peer.record.cohortId)!;
    if (cohort.record.digest !== input.digest) {
      tx.error(input.connId, {
        code: 'SCHEMA_MISMATCH',
        message: `cohort ${cohort.id} runs schema ${cohort.record.schema.id} ${cohort.record.digest}; this hello has ${input.digest}`,
      });
      return;
    }
    if (peer.connId !== null) tx.close(peer.connId, closeCodes.superseded, 'replaced by a resumed connection');
    peer.connId = input.connId;
    peer.record.status = 'connected';
    peer.record.graceEndsAtMs = null;
    peer.waiting = false;
    this.inGrace.delete(peer);
    tx.peer(peer.record);
    tx.event(cohort.id, 'peer.resumed', { peerId: peer.record.peerId });

    const current = input.currentStep;
    if (peer.leaseId !== null) {
      const lease = this.leases.get(peer.leaseId)!;
      if (current?.leaseId !== lease.leaseId) this.loseLease(tx, cohort, lease, 'not running it after resume');
    } else if (current && current.leaseId !== peer.orphan?.leaseId) {
      this.adoptOrphan(tx, cohort, peer, current);
    }
    tx.send(peer.connId, this.welcome(cohort, peer, input.presentedToken!.token, true));
    if (cohort.record.status !== 'open') this.sendComplete(tx, cohort, peer);
    tx.dirty.add(cohort);
  }

  private join(tx: CoreTx, input: HelloInput, previous: PeerState | null): void {
    const reg = input.registration;
    let cohort = this.matcher.find(reg, input.digest);
    if (!cohort) cohort = this.createCohort(tx, input);
    if (reg.pipelineType === 'dependent') {
      const before = cohort.patchsets.size;
      for (const p of reg.patchsets) cohort.patchsets.add(p);
      if (cohort.patchsets.size !== before) {
        cohort.record.patchsets = [...cohort.patchsets].sort();
        tx.cohort(cohort.record);
      }
    }
    if (previous) this.inGrace.delete(previous);
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
    const peer: PeerState = { record, connId: input.connId, leaseId: null, orphan: null, waiting: false, done: false };
    this.peers.set(input.peerId, peer);
    cohort.members.add(input.peerId);
    cohort.addRepos(reg);
    tx.peer(record);
    tx.event(cohort.id, 'peer.joined', { peerId: input.peerId, detail: `${cohort.members.size} peers` });
    if (input.currentStep) this.adoptOrphan(tx, cohort, peer, input.currentStep);
    tx.send(peer.connId, this.welcome(cohort, peer, input.freshToken.token, false));
    if (cohort.record.status !== 'open') this.sendComplete(tx, cohort, peer);
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
      tx.send(peer.connId, { type: 'abort', stepId: current.stepId, leaseId: current.leaseId, reason: 'lease-lost' });
      return;
    }
    peer.orphan = { stepId: current.stepId, leaseId: current.leaseId };
  }

  private createCohort(tx: CoreTx, input: HelloInput): Cohort {
    const reg = input.registration;
    const record: CohortRecord = {
      cohortId: this.ids.cohortId(),
      repo: reg.repo,
      baseRef: reg.baseRef,
      cacheId: reg.cacheId,
      pipelineType: reg.pipelineType,
      isolated: reg.isolated,
      schema: input.schema,
      digest: input.digest,
      baseSha: reg.baseSha,
      patchsets: patchsetSet(reg.patchsets),
      status: 'open',
      createdAtMs: tx.now,
      resolvedAtMs: null,
      lastActivityMs: tx.now,
      secondsSaved: null,
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
      failReason: null,
      failPeerId: null,
      failExitCode: null,
      failLogTail: null,
      resolvedAtMs: null,
    }));
    tx.cohort(record);
    tx.event(record.cohortId, 'cohort.created', { detail: `${input.schema.id} ${input.digest}` });
    const siblings = this.matcher.digestSiblings(reg, input.schema.id, input.digest);
    if (siblings.length > 0) {
      const detail = `schema ${input.schema.id} is also in use with digest ${siblings.join(', ')}; peers with different digests never share a cohort`;
      tx.event(record.cohortId, 'schema.digest-differs', { detail });
      tx.notice('schema id seen with different digests', { schemaId: input.schema.id, digest: input.digest, otherDigests: siblings.join(',') });
    }
    steps.forEach((step, i) => {
      tx.step(step);
      const key = memoKey(reg, input.schema.steps[i]!.target);
      const memo = key === null ? undefined : this.memos.get(key);
      if (memo && tx.now < memo.expiresAtMs) {
        transitionStep(step, 'succeeded');
        step.fromMemo = true;
        step.durationMs = memo.durationMs;
        step.resolvedAtMs = tx.now;
        tx.append({ table: 'success', cohortId: record.cohortId, stepId: step.stepId, leaseId: null, peerId: null, atMs: tx.now });
        tx.event(record.cohortId, 'step.memo', { stepId: step.stepId, detail: `built in cohort ${memo.cohortId}` });
        tx.stat('step.reused');
      }
    });
    const cohort = new Cohort(record, steps);
    this.indexCohort(cohort);
    return cohort;
  }

  private indexCohort(cohort: Cohort): void {
    cohort.priorityMs = criticalPathMs(cohort.record.schema, (stepId) => this.estimateMs(cohort, stepId));
    this.cohorts.set(cohort.id, cohort);
    this.matcher.add(cohort);
  }

  private welcome(cohort: Cohort, peer: PeerState, token: string, resumed: boolean): Welcome {
    return {
      type: 'welcome' as const,
      protocol: protocolVersion,
      peerId: peer.record.peerId,
      resumeToken: token,
      resumed,
      cohort: {
        id: cohort.id,
        peers: this.activeMembers(cohort),
        steps: cohort.ordered.length,
        resolved: cohort.ordered.length - cohort.unresolved,
        succeeded: cohort.ordered.flatMap((s) => (s.status === 'succeeded' ? [{ stepId: s.stepId, peerId: s.builtBy, fromMemo: s.fromMemo }] : [])),
      },
      pingIntervalMs: this.config.pingIntervalMs,
    };
  }

  // ---- completions --------------------------------------------------------

  private onFinished(tx: CoreTx, input: FinishedInput): void {
    const peer = this.peers.get(input.peerId);
    if (!peer || peer.connId !== input.connId) return; // a superseded connection; its socket is closing
    const lease = this.leases.get(input.leaseId);
    const refuse = (code: 'STALE_LEASE' | 'LEASE_NOT_HELD' | 'UNKNOWN_STEP', message: string): void =>
      tx.error(input.connId, { code, message, stepId: input.stepId, leaseId: input.leaseId });

    if (peer.orphan?.leaseId === input.leaseId) peer.orphan = null;
    const ownCohort = this.cohorts.get(peer.record.cohortId);
    if (ownCohort) tx.dirty.add(ownCohort);
    if (!lease) {
      refuse('STALE_LEASE', `lease ${input.leaseId} is unknown to the authority; the result was not recorded`);
      return;
    }
    if (lease.peerId !== input.peerId) {
      refuse('LEASE_NOT_HELD', `lease ${input.leaseId} belongs to another peer; the result was not recorded`);
      return;
    }
    if (lease.stepId !== input.stepId) {
      refuse('UNKNOWN_STEP', `lease ${input.leaseId} is for step "${lease.stepId}", not "${input.stepId}"`);
      return;
    }
    const cohort = this.cohorts.get(lease.cohortId);
    if (!cohort) {
      refuse('STALE_LEASE', `the cohort of lease ${input.leaseId} is closed; the result was not recorded`);
      return;
    }
    const step = cohort.steps.get(lease.stepId)!;
    if (peer.leaseId === lease.leaseId) peer.leaseId = null;

    if (lease.outcome === null) {
      this.endLease(tx, cohort, lease, input.ok ? 'succeeded' : 'failed');
      if (input.ok) this.succeed(tx, cohort, step, lease, input.durationMs);
      else this.recordFailure(tx, cohort, step, lease, input.exitCode, input.logTail);
      return;
    }
    if (input.ok && !isResolved(step.status)) {
      // The lease was lost but the work was done, and nobody has finished the step since: it counts.
      tx.event(cohort.id, 'step.late-completion', { stepId: step.stepId, peerId: lease.peerId, detail: `lease ${lease.leaseId} (${lease.outcome})` });
      this.succeed(tx, cohort, step, lease, input.durationMs);
      return;
    }
    refuse(
      'STALE_LEASE',
      input.ok
        ? `lease ${input.leaseId} already ended (${lease.outcome}) and step "${step.stepId}" is ${step.status}; this completion changed nothing`
        : `lease ${input.leaseId} already ended (${lease.outcome}); its failure is not counted`,
    );
  }

  private succeed(tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, durationMs: number): void {
    transitionStep(step, 'succeeded');
    step.builtBy = lease.peerId;
    step.fromMemo = false;
    step.durationMs = durationMs;
    step.resolvedAtMs = tx.now;
    cohort.unresolved--;
    tx.step(step);
    tx.append({ table: 'success', cohortId: cohort.id, stepId: step.stepId, leaseId: lease.leaseId, peerId: lease.peerId, atMs: tx.now });
    tx.event(cohort.id, 'step.succeeded', { stepId: step.stepId, peerId: lease.peerId, detail: `${durationMs} ms, attempt ${lease.attempt}` });
    tx.stat('step.succeeded');
    for (const other of [...cohort.live(step.stepId)]) this.abortLease(tx, cohort, other, 'superseded');
    this.abortOrphans(tx, cohort, step.stepId);
    this.recordDuration(tx, cohort, step.stepId, durationMs);
    const builder = this.peers.get(lease.peerId);
    const key = builder ? memoKey(builder.record.registration, cohort.targetOf(step.stepId)) : null;
    if (key !== null) {
      const memo: MemoRecord = {
        memoKey: key,
        stepId: step.stepId,
        cohortId: cohort.id,
        peerId: lease.peerId,
        durationMs,
        createdAtMs: tx.now,
        expiresAtMs: tx.now + this.config.memoTtlMs,
      };
      this.memos.set(key, memo);
      tx.append({ table: 'memo', row: memo });
    }
    this.broadcast(tx, cohort, { type: 'step.update', cohortId: cohort.id, stepId: step.stepId, state: 'succeeded', peerId: lease.peerId, fromMemo: false, durationMs });
  }

  private recordFailure(tx: CoreTx, cohort: Cohort, step: StepRecord, lease: LeaseRecord, exitCode: number | null, logTail: string | null): void {
    step.failures++;
    if (!step.failedOn.includes(lease.peerId)) step.failedOn.push(lease.peerId);
    step.failPeerId = lease.peerId;
    step.failExitCode = exitCode;
    step.failLogTail = logTail === null ? null : logTail.slice(-limits.maxLogTailChars);
    tx.step(step);
    tx.event(cohort.id, 'step.attempt-failed', { stepId: step.stepId, peerId: lease.peerId, detail: `exit ${exitCode ?? 'none'}, attempt ${lease.attempt}` });
    if (cohort.live(step.stepId).length > 0) return; // another copy is still running
    if (step.failures >= this.config.maxFailures) {
      this.failStep(tx, cohort, step, `failed ${step.failures} times; last on ${lease.peerId} with exit ${exitCode ?? 'none'}`);
    } else {
      transitionStep(step, 'pending');
      const reason = `attempt ${lease.attempt} failed on ${lease.peerId} with exit ${exitCode ?? 'none'}; retrying, on another peer when there is one`;
      tx.event(cohort.id, 'step.retry', { stepId: step.stepId, detail: reason });
      this.broadcast(tx, cohort, {
        type: 'step.update',
        cohortId: cohort.id,
        stepId: step.stepId,
        state: 'pending',
        peerId: lease.peerId,
        fromMemo: false,
        exitCode,
        ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
        reason,
      });
    }
  }

  private failStep(tx: CoreTx, cohort: Cohort, step: StepRecord, reason: string): void {
    for (const lease of [...cohort.live(step.stepId)]) this.abortLease(tx, cohort, lease, 'cancelled');
    transitionStep(step, 'failed');
    step.failReason = reason;
    step.resolvedAtMs = tx.now;
    cohort.unresolved--;
    cohort.failedCount++;
    tx.step(step);
    tx.event(cohort.id, 'step.failed', { stepId: step.stepId, peerId: step.failPeerId, detail: reason });
    tx.stat('step.failed');
    this.broadcast(tx, cohort, {
      type: 'step.update',
      cohortId: cohort.id,
      stepId: step.stepId,
      state: 'failed',
      peerId: step.failPeerId,
      fromMemo: false,
      exitCode: step.failExitCode,
      ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
      reason,
    });
    for (const dependentId of cohort.dependents.get(step.stepId)!) {
      const dependent = cohort.steps.get(dependentId)!;
      if (dependent.status === 'pending') this.failStep(tx, cohort, dependent, `needs "${step.stepId}", which failed`);
    }
  }

  private recordDuration(tx: CoreTx, cohort: Cohort, stepId: string, durationMs: number): void {
    const key = durationKey(cohort.record.repo, cohort.record.schema.id, stepId);
    const known = this.durations.get(key);
    const row: DurationRecord = known ?? { durationKey: key, avgMs: durationMs, samples: 0 };
    if (known) row.avgMs = this.config.durationAlpha * durationMs + (1 - this.config.durationAlpha) * row.avgMs;
    row.samples++;
    this.durations.set(key, row);
    tx.append({ table: 'duration', row: { ...row } });
  }

  // ---- leases ---------------------------------------------------------------

  private grant(tx: CoreTx, cohort: Cohort, step: StepRecord, peer: PeerState, backup: boolean): void {
    step.attempts++;
    const lease: LeaseRecord = {
      leaseId: this.ids.leaseId(),
      cohortId: cohort.id,
      stepId: step.stepId,
      peerId: peer.record.peerId,
      attempt: step.attempts,
      backup,
      startedAtMs: tx.now,
      endedAtMs: null,
      outcome: null,
    };
    if (step.status === 'pending') transitionStep(step, 'leased');
    this.leases.set(lease.leaseId, lease);
    cohort.addLive(lease);
    peer.leaseId = lease.leaseId;
    peer.waiting = false;
    tx.step(step);
    tx.lease(lease);
    tx.event(cohort.id, 'step.leased', { stepId: step.stepId, peerId: lease.peerId, detail: `attempt ${lease.attempt}${backup ? ', backup copy' : ''}` });
    tx.stat('step.assigned');
    tx.send(peer.connId, { type: 'assign', cohortId: cohort.id, stepId: step.stepId, leaseId: lease.leaseId, attempt: lease.attempt, backup });
  }

  private endLease(tx: CoreTx, cohort: Cohort, lease: LeaseRecord, outcome: LeaseOutcome): void {
    lease.outcome = outcome;
    lease.endedAtMs = tx.now;
    cohort.removeLive(lease);
    tx.lease(lease);
    const holder = this.peers.get(lease.peerId);
    if (holder?.leaseId === lease.leaseId) holder.leaseId = null;
  }

  /** Ends a live copy that is no longer wanted and tells its holder to stop. */
  private abortLease(tx: CoreTx, cohort: Cohort, lease: LeaseRecord, reason: 'superseded' | 'cancelled'): void {
    this.endLease(tx, cohort, lease, 'aborted');
    tx.event(cohort.id, 'lease.aborted', { stepId: lease.stepId, peerId: lease.peerId, detail: reason });
    tx.send(this.peers.get(lease.peerId)?.connId ?? null, { type: 'abort', stepId: lease.stepId, leaseId: lease.leaseId, reason });
    tx.dirty.add(cohort);
  }

  private abortOrphans(tx: CoreTx, cohort: Cohort, stepId: string): void {
    for (const peerId of cohort.members) {
      const peer = this.peers.get(peerId)!;
      if (peer.orphan?.stepId !== stepId) continue;
      tx.send(peer.connId, { type: 'abort', stepId, leaseId: peer.orphan.leaseId, reason: 'superseded' });
      peer.orphan = null;
    }
  }

  /** The holder is gone: the lease ends; the step goes back to pending unless another copy runs. */
  private loseLease(tx: CoreTx, cohort: Cohort, lease: LeaseRecord, why: string): void {
    this.endLease(tx, cohort, lease, 'lost');
    tx.event(cohort.id, 'lease.lost', { stepId: lease.stepId, peerId: lease.peerId, detail: why });
    tx.stat('lease.expired');
    const step = cohort.steps.get(lease.stepId)!;
    if (step.status === 'leased' && cohort.live(step.stepId).length === 0) this.returnToPending(tx, cohort, step, why);
    tx.dirty.add(cohort);
  }

  private returnToPending(tx: CoreTx, cohort: Cohort, step: StepRecord, why: string): void {
    step.lostLeases++;
    tx.step(step);
    if (step.lostLeases >= this.config.maxLostLeases) {
      transitionStep(step, 'pending');
      this.failStep(tx, cohort, step, `lost its peer ${step.lostLeases} times (last: ${why}); the step may be killing its peer`);
    } else {
      transitionStep(step, 'pending');
    }
  }

  // ---- connections ----------------------------------------------------------

  private onDisconnected(tx: CoreTx, connId: ConnId, peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer || peer.connId !== connId) return;
    peer.connId = null;
    peer.waiting = false;
    const cohort = this.cohorts.get(peer.record.cohortId)!;
    tx.dirty.add(cohort);
    if (peer.done) {
      this.leave(tx, cohort, peer, 'left');
      return;
    }
    peer.record.status = 'disconnected';
    peer.record.graceEndsAtMs = tx.now + (peer.record.resumable ? this.config.leaseGraceMs : 0);
    this.inGrace.add(peer);
    tx.peer(peer.record);
    tx.event(cohort.id, 'peer.disconnected', { peerId, detail: `grace until ${peer.record.graceEndsAtMs}` });
    if (peer.record.graceEndsAtMs <= tx.now) this.expireGrace(tx, peer);
  }

  private onBye(tx: CoreTx, connId: ConnId, peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer || peer.connId !== connId) return;
    const cohort = this.cohorts.get(peer.record.cohortId)!;
    tx.dirty.add(cohort);
    if (peer.leaseId !== null) this.loseLease(tx, cohort, this.leases.get(peer.leaseId)!, 'peer said bye');
    this.leave(tx, cohort, peer, 'left');
  }

  private leave(tx: CoreTx, cohort: Cohort, peer: PeerState, status: 'gone' | 'left'): void {
    peer.connId = null;
    peer.orphan = null;
    peer.waiting = false;
    peer.record.status = status;
    peer.record.graceEndsAtMs = null;
    this.inGrace.delete(peer);
    tx.peer(peer.record);
    tx.event(cohort.id, `peer.${status}`, { peerId: peer.record.peerId });
  }

  /** Grace is over (`now >= graceEndsAtMs`): the peer is gone and its lease is lost. */
  private expireGrace(tx: CoreTx, peer: PeerState): void {
    const cohort = this.cohorts.get(peer.record.cohortId)!;
    if (peer.leaseId !== null) this.loseLease(tx, cohort, this.leases.get(peer.leaseId)!, 'grace period expired');
    this.leave(tx, cohort, peer, 'gone');
    tx.dirty.add(cohort);
  }

  private onTick(tx: CoreTx): void {
    for (const peer of [...this.inGrace]) {
      if (peer.record.graceEndsAtMs !== null && tx.now >= peer.record.graceEndsAtMs) this.expireGrace(tx, peer);
    }
    for (const cohort of this.cohorts.values()) {
      if (cohort.record.status === 'open' && cohort.liveLeases.size > 0 && this.hasWaitingPeer(cohort)) tx.dirty.add(cohort);
    }
    if (tx.now >= this.nextSweepAtMs) {
      this.sweep(tx);
      this.nextSweepAtMs = tx.now + this.config.sweepIntervalMs;
    }
  }

  /** Expires memos, abandons open cohorts nobody has worked on for the retention time, forgets old resolved ones. */
  private sweep(tx: CoreTx): void {
    for (const [key, memo] of this.memos) {
      if (tx.now >= memo.expiresAtMs) {
        this.memos.delete(key);
        tx.append({ table: 'memo.delete', memoKey: key });
      }
    }
    const retention = this.config.cohortRetentionMs;
    for (const cohort of [...this.cohorts.values()]) {
      const active = [...cohort.members].some((id) => {
        const p = this.peers.get(id)!;
        return p.record.cohortId === cohort.id && (p.record.status === 'connected' || p.record.status === 'disconnected');
      });
      if (active) continue;
      if (cohort.record.status === 'open' && tx.now >= cohort.record.lastActivityMs + retention) {
        this.cancelCohort(tx, cohort, 'abandoned: no peer for the retention period');
      } else if (cohort.record.status !== 'open' && tx.now >= (cohort.record.resolvedAtMs ?? 0) + retention) {
        this.evict(cohort);
      }
    }
  }

  private evict(cohort: Cohort): void {
    this.cohorts.delete(cohort.id);
    this.matcher.remove(cohort);
    for (const [leaseId, lease] of this.leases) if (lease.cohortId === cohort.id) this.leases.delete(leaseId);
    for (const peerId of cohort.members) {
      if (this.peers.get(peerId)?.record.cohortId === cohort.id) this.peers.delete(peerId);
    }
  }

  // ---- admin ------------------------------------------------------------------

  private onCancel(tx: CoreTx, cohortId: string): void {
    const cohort = this.cohorts.get(cohortId);
    if (!cohort) {
      tx.admin = { ok: false, status: 404, code: 'NOT_FOUND', message: `no open or recent cohort ${cohortId}` };
      return;
    }
    if (cohort.record.status !== 'open') {
      tx.admin = { ok: false, status: 409, code: 'NOT_OPEN', message: `cohort ${cohortId} is already ${cohort.record.status}` };
      return;
    }
    this.cancelCohort(tx, cohort, 'cancelled by an admin');
    tx.admin = { ok: true };
  }

  private cancelCohort(tx: CoreTx, cohort: Cohort, reason: string): void {
    cohort.record.status = 'cancelled';
    cohort.record.resolvedAtMs = tx.now;
    for (const step of cohort.ordered) {
      if (isResolved(step.status)) continue;
      for (const lease of [...cohort.live(step.stepId)]) this.abortLease(tx, cohort, lease, 'cancelled');
      transitionStep(step, 'failed');
      step.failReason = reason;
      step.resolvedAtMs = tx.now;
      cohort.unresolved--;
      cohort.failedCount++;
      tx.step(step);
    }
    this.matcher.remove(cohort);
    tx.cohort(cohort.record);
    tx.event(cohort.id, 'cohort.cancelled', { detail: reason });
    for (const peerId of cohort.members) {
      const peer = this.peers.get(peerId)!;
      if (peer.record.cohortId === cohort.id && peer.record.status === 'connected' && !peer.done) this.sendComplete(tx, cohort, peer);
    }
  }

  private onRetry(tx: CoreTx, cohortId: string, stepId: string): void {
    const cohort = this.cohorts.get(cohortId);
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
    if (cohort.failedCount === 0) this.matcher.add(cohort);
    tx.event(cohort.id, 'step.admin-retry', { stepId });
    this.broadcast(tx, cohort, { type: 'step.update', cohortId: cohort.id, stepId, state: 'pending', peerId: null, fromMemo: false, reason: 'retried by an admin' });
    tx.dirty.add(cohort);
    tx.admin = { ok: true };
  }

  // ---- dispatch and completion -------------------------------------------------

  /** After every input: complete cohorts that are resolved, give idle peers work or a `wait`. */
  private settle(tx: CoreTx): void {
    for (const cohort of tx.dirty) {
      cohort.record.lastActivityMs = tx.now;
      if (cohort.record.status !== 'open') continue;
      if (cohort.unresolved === 0) this.completeCohort(tx, cohort);
      else this.dispatch(tx, cohort);
    }
  }

  private dispatch(tx: CoreTx, cohort: Cohort): void {
    if (this.draining) return;
    const idle: PeerState[] = [];
    for (const peerId of cohort.members) {
      const peer = this.peers.get(peerId)!;
      if (peer.record.cohortId !== cohort.id || peer.record.status !== 'connected') continue;
      if (peer.leaseId !== null || peer.orphan !== null || peer.done) continue;
      idle.push(peer);
    }
    if (idle.length === 0) return;
    const plan = new DispatchPlan(this.pickContext(tx.now), cohort);
    for (const peer of idle) {
      const choice = plan.take(peer.record.peerId);
      if (choice) {
        this.grant(tx, cohort, choice.step, peer, choice.backup);
      } else if (!peer.waiting) {
        peer.waiting = true;
        tx.send(peer.connId, this.waitMessage(cohort));
      }
    }
  }

  private waitMessage(cohort: Cohort): Wait {
    const running: { stepId: string; peerId: string }[] = [];
    for (const [stepId, live] of cohort.liveLeases) {
      for (const lease of live) if (running.length < limits.maxWaitEntries) running.push({ stepId, peerId: lease.peerId });
    }
    return { type: 'wait' as const, cohortId: cohort.id, running, unresolved: cohort.unresolved };
  }

  private completeCohort(tx: CoreTx, cohort: Cohort): void {
    cohort.record.status = 'complete';
    cohort.record.resolvedAtMs = tx.now;
    tx.cohort(cohort.record);
    const outcome = cohort.failedCount > 0 ? 'failed' : 'succeeded';
    const saved = cohortSecondsSaved(cohort, (c, s) => this.estimateMs(c, s));
    cohort.record.secondsSaved = saved;
    tx.event(cohort.id, 'cohort.complete', { detail: `${outcome}, ${saved} s saved` });
    tx.stat('seconds.saved', saved);
    for (const peerId of cohort.members) {
      const peer = this.peers.get(peerId)!;
      if (peer.record.cohortId === cohort.id && peer.record.status === 'connected' && !peer.done) this.sendComplete(tx, cohort, peer);
    }
  }

  private sendComplete(tx: CoreTx, cohort: Cohort, peer: PeerState): void {
    const outcome = cohort.record.status === 'cancelled' ? 'cancelled' : cohort.failedCount > 0 ? 'failed' : 'succeeded';
    peer.done = true;
    peer.waiting = false;
    tx.send(peer.connId, {
      type: 'complete',
      cohortId: cohort.id,
      outcome,
      summary: peerSummary(cohort, peer.record.peerId, (c, s) => this.estimateMs(c, s)),
    });
  }

  private broadcast(tx: CoreTx, cohort: Cohort, message: ServerMessage): void {
    for (const peerId of cohort.members) {
      const peer = this.peers.get(peerId)!;
      if (peer.record.cohortId === cohort.id && peer.connId !== null) tx.send(peer.connId, message);
    }
  }

  // ---- helpers -------------------------------------------------------------------

  private pickContext(now: number): PickContext {
    return {
      config: this.config,
      now,
      estimateMs: (cohort, stepId) => this.estimateMs(cohort, stepId),
      backupCapable: (peerId) => this.peers.get(peerId)?.record.resumable ?? false,
      estimateKnown: (cohort, stepId) =>
        this.durations.has(durationKey(cohort.record.repo, cohort.record.schema.id, stepId)) ||
        cohort.record.schema.steps[cohort.schemaIndex.get(stepId)!]!.estimateSec !== undefined,
      anotherPeerCouldTake: (cohort, step, peerId) => {
        for (const otherId of cohort.members) {
          if (otherId === peerId || step.failedOn.includes(otherId)) continue;
          const other = this.peers.get(otherId)!;
          if (other.record.cohortId === cohort.id && other.record.status === 'connected' && !other.done) return true;
        }
        return false;
      },
    };
  }

  private estimateMs(cohort: Cohort, stepId: string): number {
    const recorded = this.durations.get(durationKey(cohort.record.repo, cohort.record.schema.id, stepId));
    if (recorded) return recorded.avgMs;
    const estimateSec = cohort.record.schema.steps[cohort.schemaIndex.get(stepId)!]!.estimateSec;
    return estimateSec === undefined ? this.config.defaultEstimateMs : estimateSec * 1000;
  }

  private hasWaitingPeer(cohort: Cohort): boolean {
    for (const peerId of cohort.members) if (this.peers.get(peerId)?.waiting) return true;
    return false;
  }

  private activeMembers(cohort: Cohort): number {
    let n = 0;
    for (const peerId of cohort.members) {
      const p = this.peers.get(peerId)!;
      if (p.record.cohortId === cohort.id && (p.record.status === 'connected' || p.record.status === 'disconnected')) n++;
    }
    return n;
  }
}
