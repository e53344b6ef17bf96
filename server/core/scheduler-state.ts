import type { Cohort } from './cohort.js';
import { CohortMatcher } from './cohort-matcher.js';
import type { CoreTx } from './core-tx.js';
import type { CoreConfig, CoreInput, IdSource } from './core-types.js';
import type { ConnId, StepChange } from './effects.js';
import { DeadlineHeap } from './deadline-heap.js';
import type { Journal } from './journal.js';
import { transitionWork, type PeerWork } from './peer-work.js';
import { criticalPathMs } from './priority.js';
import type { DurationRecord, LeaseRecord, MemoRecord, PeerRecord } from './records.js';
import { armStraggler, armStragglers, type StragglerEntry } from './straggler-deadlines.js';
import { trackOpen } from './source-quota.js';
import { durationKey } from './source-state.js';
import type { PickContext } from './step-picker.js';
import { cohortSweepAtMs, type SweepEntry } from './retention-sweep.js';
import { canRun } from '../../shared/labels.js';
import { labelsOf } from './peer-labels.js';

/**
 * The scheduler's whole state, shared by its parts (peer-sessions,
 * step-finish, cohort-lifecycle, step-lifecycle) and the helpers they all need. Only
 * `Scheduler` is public; these modules are its inside. Everything here is
 * typed read-only: changes go through the input's journal (`tx.journal`).
 */

/** A peer as the scheduler tracks it: its persisted record, its connection and what it is doing. */
export interface PeerState {
  readonly peerId: string;
  readonly record: PeerRecord;
  readonly connId: ConnId | null;
  readonly work: PeerWork;
}

export type HelloInput = Extract<CoreInput, { kind: 'hello' }>;
export type FinishedInput = Extract<CoreInput, { kind: 'finished' }>;

export class SchedulerState {
  readonly cohorts: ReadonlyMap<string, Cohort> = new Map();
  readonly peers: ReadonlyMap<string, PeerState> = new Map();
  /** Every lease of the cohorts in memory, live or ended (ended ones fence late completions). */
  readonly leases: ReadonlyMap<string, LeaseRecord> = new Map();
  readonly memos: ReadonlyMap<string, MemoRecord> = new Map();
  readonly durations: ReadonlyMap<string, DurationRecord> = new Map();
  readonly matcher = new CohortMatcher();
  /** Open cohorts by quota source (repo + cache id); see source-quota.ts. */
  readonly openBySource: ReadonlyMap<string, ReadonlySet<Cohort>> = new Map();
  /** Which peer joined on each open connection: the one place "joined" is known (adapters keep none). */
  readonly connections: ReadonlyMap<ConnId, PeerState> = new Map();
  /** Connections replaced by a resumed one: their last frames are ignored until they close. */
  readonly superseded: ReadonlySet<ConnId> = new Set();
  /** Peers in their grace period. */
  readonly inGrace: ReadonlySet<PeerState> = new Set();
  /** When grace periods end, earliest first (entries whose peer moved on are dropped when they come up). */
  readonly graceDeadlines = new DeadlineHeap<PeerState>();
  /** When live leases pass their max age, earliest first (entries of leases that ended are dropped when they come up). */
  readonly leaseAgeDeadlines = new DeadlineHeap<LeaseRecord>();
  /** Peers told `wait` (their cohorts are the only ones a straggler backup can matter to). */
  readonly waiting: ReadonlySet<PeerState> = new Set();
  /** Open cohorts (gauges; live leases exist only in open cohorts). */
  readonly openCohorts: ReadonlySet<Cohort> = new Set();
  /** Every lease id of each cohort in memory, so evicting a cohort drops its leases without a scan. */
  readonly leaseIdsByCohort: ReadonlyMap<string, ReadonlySet<string>> = new Map();
  /** When a live lease may get a backup copy (straggler-deadlines.ts). */
  readonly stragglerDeadlines = new DeadlineHeap<StragglerEntry>();
  /** Memo expiry, idle-cohort abandonment and eviction (retention-sweep.ts). */
  readonly sweepDeadlines = new DeadlineHeap<SweepEntry>();
  /** The current sweep deadline of each cohort in memory (older heap entries for it are stale). */
  readonly cohortSweepAtMs: ReadonlyMap<Cohort, number> = new Map();
  readonly draining: boolean = false;
  readonly nextSweepAtMs: number = 0;
  readonly lastNow: number = 0;

  constructor(
    readonly config: CoreConfig,
    readonly ids: IdSource,
  ) {}

  /** Recorded average, else `estimateSec`, else the configured default. */
  estimateMs(cohort: Cohort, stepId: string): number {
    const recorded = this.durations.get(durationKey(cohort.record.repo, cohort.record.schema.id, stepId));
    if (recorded) return recorded.avgMs;
    const estimateSec = cohort.record.schema.steps[cohort.schemaIndex.get(stepId)!]!.estimateSec;
    return estimateSec === undefined ? this.config.defaultEstimateMs : estimateSec * 1000;
  }

  /** Whether the estimate is real (recorded or `estimateSec`) rather than the default guess. */
  estimateKnown(cohort: Cohort, stepId: string): boolean {
    return (
      this.durations.has(durationKey(cohort.record.repo, cohort.record.schema.id, stepId)) ||
      cohort.record.schema.steps[cohort.schemaIndex.get(stepId)!]!.estimateSec !== undefined
    );
  }

  /**
   * How long a lease of this step may run before it is ended and the step
   * leased again (CoreConfig `maxLeaseAgeMs`), × 4 for each earlier lease of
   * the step that was ended for its age: a step that really takes longer than
   * its estimate said is slowed down, never stopped for ever.
   */
  maxLeaseAgeMs(cohort: Cohort, stepId: string): number {
    const c = this.config;
    const base =
      c.maxLeaseAgeMs !== null ? c.maxLeaseAgeMs : !this.estimateKnown(cohort, stepId) ? c.unknownLeaseAgeMs : Math.max(c.minLeaseAgeMs, Math.round(c.leaseAgeFactor * this.estimateMs(cohort, stepId)));
    return base * 4 ** Math.min(cohort.leaseTimeouts.get(stepId) ?? 0, 8);
  }

  pickContext(now: number): PickContext {
    return {
      config: this.config,
      now,
      estimateMs: (cohort, stepId) => this.estimateMs(cohort, stepId),
      backupCapable: (peerId) => this.peers.get(peerId)?.record.resumable ?? false,
      estimateKnown: (cohort, stepId) => this.estimateKnown(cohort, stepId),
      anotherPeerCouldTake: (cohort, step, peerId) => {
        const requires = cohort.requiresOf(step.stepId);
        for (const other of this.currentMembers(cohort)) {
          if (other.peerId === peerId || step.failedOn.includes(other.peerId)) continue;
          if (requires !== undefined && !canRun(requires, labelsOf(other))) continue;
          if (other.record.status === 'connected' && other.work.kind !== 'done') return true;
        }
        return false;
      },
    };
  }

  /** Members whose current registration is in this cohort (a peer id may have moved on since). */
  *currentMembers(cohort: Cohort): Iterable<PeerState> {
    for (const peerId of cohort.members) {
      const peer = this.peers.get(peerId);
      if (peer && peer.record.cohortId === cohort.id) yield peer;
    }
  }

  hasWaitingPeer(cohort: Cohort): boolean {
    for (const peer of this.currentMembers(cohort)) if (peer.work.kind === 'waiting') return true;
    return false;
  }

  /** Members that are connected or in their grace period. */
  activeMembers(cohort: Cohort): number {
    let n = 0;
    for (const p of this.currentMembers(cohort)) if (p.record.status === 'connected' || p.record.status === 'disconnected') n++;
    return n;
  }

  /** Binds (or with null unbinds) a peer's connection, keeping the connection index. */
  setConnection(journal: Journal, peer: PeerState, connId: ConnId | null): void {
    if (peer.connId !== null && this.connections.get(peer.connId) === peer) journal.mapDelete(this.connections, peer.connId);
    journal.set(peer, { connId });
    if (connId !== null) journal.mapSet(this.connections, connId, peer);
  }

  /** Changes a peer's work state (peer-work.ts) and keeps the index of waiting peers. */
  setWork(journal: Journal, peer: PeerState, to: PeerWork): void {
    transitionWork(journal, peer, to);
    if (to.kind === 'waiting') {
      journal.setAdd(this.waiting, peer);
      const cohort = this.cohorts.get(peer.record.cohortId);
      if (cohort) armStragglers(this, cohort);
    } else {
      journal.setDelete(this.waiting, peer);
    }
  }

  /** Indexes a new lease under its cohort (and arms its straggler deadline); the lease is live or ended. */
  addLease(journal: Journal, cohort: Cohort, lease: LeaseRecord): void {
    journal.mapSet(this.leases, lease.leaseId, lease);
    let ids = this.leaseIdsByCohort.get(cohort.id);
    if (!ids) journal.mapSet(this.leaseIdsByCohort, cohort.id, (ids = new Set()));
    journal.setAdd(ids, lease.leaseId);
    if (lease.end === null) {
      cohort.addLive(journal, lease);
      armStraggler(this, cohort, lease.leaseId);
    }
  }

  /** A new or replaced memo, with its expiry in the sweep. */
  putMemo(journal: Journal, memo: MemoRecord): void {
    journal.mapSet(this.memos, memo.memoKey, memo);
    this.sweepDeadlines.push(memo.expiresAtMs, { kind: 'memo', memo });
  }

  /**
   * Files a cohort by its status after it was created, restored or changed
   * status: the matcher (cancelled cohorts leave it), the open set, and its
   * sweep deadline (idle TTL while open, retention once resolved).
   */
  refile(journal: Journal, cohort: Cohort): void {
    if (cohort.record.status === 'cancelled') this.matcher.remove(journal, cohort);
    else this.matcher.add(journal, cohort);
    if (cohort.record.status === 'open') journal.setAdd(this.openCohorts, cohort);
    else journal.setDelete(this.openCohorts, cohort);
    this.armSweep(journal, cohort, cohortSweepAtMs(this, cohort));
  }

  /** Sets a cohort's sweep deadline (earlier entries for it become stale). */
  armSweep(journal: Journal, cohort: Cohort, atMs: number): void {
    if (this.cohortSweepAtMs.get(cohort) === atMs) return;
    journal.mapSet(this.cohortSweepAtMs, cohort, atMs);
    this.sweepDeadlines.push(atMs, { kind: 'cohort', cohort });
  }

  /** Starts a peer's grace period index entry (the record already holds `graceEndsAtMs`). */
  enterGrace(journal: Journal, peer: PeerState, graceEndsAtMs: number): void {
    journal.setAdd(this.inGrace, peer);
    this.graceDeadlines.push(graceEndsAtMs, peer);
  }

  /** The current grace deadline entry is this one (not one the peer has since left or replaced). */
  graceEntryValid(peer: PeerState, atMs: number): boolean {
    return this.inGrace.has(peer) && this.peers.get(peer.peerId) === peer && peer.record.graceEndsAtMs === atMs;
  }

  indexCohort(tx: CoreTx, cohort: Cohort): void {
    tx.journal.set(cohort, { priorityMs: criticalPathMs(cohort.record.schema, (stepId) => this.estimateMs(cohort, stepId)) });
    tx.journal.mapSet(this.cohorts, cohort.id, cohort);
    this.refile(tx.journal, cohort);
    trackOpen(this, tx.journal, cohort);
  }

  /**
   * A step change, told to every connected member of the cohort that still needs it: not to one told
   * `complete` already (a peer released because it can run none of what is left never hears of it).
   */
  broadcast(tx: CoreTx, cohort: Cohort, change: StepChange): void {
    const connIds: ConnId[] = [];
    for (const peer of this.currentMembers(cohort)) if (peer.connId !== null && peer.work.kind !== 'done') connIds.push(peer.connId);
    if (connIds.length > 0) tx.emit({ kind: 'step-changed', connIds, change });
  }
}
