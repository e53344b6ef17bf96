import type { Cohort } from './cohort.js';
import type { CohortData } from './cohort-data.js';
import { CohortMatcher } from './cohort-matcher.js';
import type { CoreTx } from './core-tx.js';
import { defaultCoreConfig, type CoreConfig, type IdSource } from './core-types.js';
import { DeadlineHeap } from './deadline-heap.js';
import type { Journal } from './journal.js';
import { PeerSessions } from './peer-sessions.js';
import { criticalPathMs } from './priority.js';
import type { DurationRecord, LeaseRecord, MemoRecord } from './records.js';
import type { StragglerEntry } from './straggler-deadlines.js';
import { trackOpen } from './source-quota.js';
import type { PickContext } from './step-picker.js';
import { cohortSweepAtMs, type SweepEntry } from './retention-sweep.js';
import { canRun } from '../../shared/labels.js';
import { labelsOf } from './peer-labels.js';

/** A placeholder until the constructor sets the picker's config (field initializers run before it). */
const defaultPickConfig = defaultCoreConfig;

/**
 * What the scheduler's owners share: the cohorts by id and the peer sessions
 * (each owns its part: a cohort its steps, leases and their transitions,
 * cohort.ts; the peer sessions connection, grace and work state,
 * peer-sessions.ts), the routing index from a lease id to its cohort, memos,
 * durations, the matcher and quota indexes, and the deadline heaps. Only
 * `Scheduler` is public; these modules are its inside. Everything here is
 * typed read-only: changes go through the input's journal (`tx.journal`).
 */
export class SchedulerState {
  readonly cohorts: ReadonlyMap<string, Cohort> = new Map();
  /** Peers, their connections, grace periods and work states. */
  readonly peers: PeerSessions = new PeerSessions(this);
  /** Which cohort owns each lease (live or ended) of the cohorts in memory: routes a report to its cohort. */
  readonly leaseOwners: ReadonlyMap<string, Cohort> = new Map();
  readonly memos: ReadonlyMap<string, MemoRecord> = new Map();
  readonly durations: ReadonlyMap<string, DurationRecord> = new Map();
  readonly matcher = new CohortMatcher();
  /** Open cohorts by quota source (repo + cache id); see source-quota.ts. */
  readonly openBySource: ReadonlyMap<string, ReadonlySet<Cohort>> = new Map();
  /** When live leases pass their max age, earliest first (entries of leases that ended are dropped when they come up). */
  readonly leaseAgeDeadlines = new DeadlineHeap<LeaseRecord>();
  /** Open cohorts (gauges; live leases exist only in open cohorts). */
  readonly openCohorts: ReadonlySet<Cohort> = new Set();
  /** When a live lease may get a backup copy (straggler-deadlines.ts). */
  readonly stragglerDeadlines = new DeadlineHeap<StragglerEntry>();
  /** Memo expiry, idle-cohort abandonment and eviction (retention-sweep.ts). */
  readonly sweepDeadlines = new DeadlineHeap<SweepEntry>();
  /** The current sweep deadline of each cohort in memory (older heap entries for it are stale). */
  readonly cohortSweepAtMs: ReadonlyMap<Cohort, number> = new Map();
  readonly draining: boolean = false;
  /**
   * Members a dispatch asked the picker about since construction (a diagnostic, never rolled back):
   * tests assert that members told `wait` are not tried again while nothing is assignable.
   */
  pickerTries = 0;
  readonly nextSweepAtMs: number = 0;
  readonly lastNow: number = 0;

  constructor(
    readonly config: CoreConfig,
    readonly ids: IdSource,
  ) {
    this.pick.config = config;
  }

  /** Recorded average, else `estimateSec`, else the configured default. */
  estimateMs(cohort: CohortData, stepId: string): number {
    const recorded = this.durations.get(cohort.durationKeyOf(stepId));
    if (recorded) return recorded.avgMs;
    const estimateSec = cohort.record.schema.steps[cohort.schemaIndex.get(stepId)!]!.estimateSec;
    return estimateSec === undefined ? this.config.defaultEstimateMs : estimateSec * 1000;
  }

  /** Whether the estimate is real (recorded or `estimateSec`) rather than the default guess. */
  estimateKnown(cohort: CohortData, stepId: string): boolean {
    return (
      this.durations.has(cohort.durationKeyOf(stepId)) ||
      cohort.record.schema.steps[cohort.schemaIndex.get(stepId)!]!.estimateSec !== undefined
    );
  }

  /**
   * How long a lease of this step may run before it is ended and the step
   * leased again (CoreConfig `maxLeaseAgeMs`), × 4 for each earlier lease of
   * the step that was ended for its age: a step that really takes longer than
   * its estimate said is slowed down, never stopped for ever.
   */
  maxLeaseAgeMs(cohort: CohortData, stepId: string): number {
    const c = this.config;
    const base =
      c.maxLeaseAgeMs !== null ? c.maxLeaseAgeMs : !this.estimateKnown(cohort, stepId) ? c.unknownLeaseAgeMs : Math.max(c.minLeaseAgeMs, Math.round(c.leaseAgeFactor * this.estimateMs(cohort, stepId)));
    return base * 4 ** Math.min(cohort.leaseTimeouts.get(stepId) ?? 0, 8);
  }

  /**
   * The picker's view at `now`. One object, made once and given the time on each call (issue 17:
   * not five closures per dispatch and per armed straggler); every call within an input passes
   * the input's time, and nothing keeps it across inputs.
   */
  pickContext(now: number): PickContext {
    const ctx = this.pick;
    ctx.now = now;
    return ctx;
  }

  private readonly pick: { -readonly [K in keyof PickContext]: PickContext[K] } = {
    config: defaultPickConfig,
    now: 0,
    estimateMs: (cohort, stepId) => this.estimateMs(cohort, stepId),
    backupCapable: (peerId) => this.peers.get(peerId)?.record.resumable ?? false,
    estimateKnown: (cohort, stepId) => this.estimateKnown(cohort, stepId),
    anotherPeerCouldTake: (cohort, step, peerId) => {
      const requires = cohort.requiresOf(step.stepId);
      for (const other of this.peers.members(cohort)) {
        if (other.peerId === peerId || step.failedOn.includes(other.peerId)) continue;
        if (requires !== undefined && !canRun(requires, labelsOf(other))) continue;
        if (other.record.status === 'connected' && other.work.kind !== 'done') return true;
      }
      return false;
    },
  };

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
    if (cohort.record.status === 'open') {
      journal.setAdd(this.openCohorts, cohort);
    } else {
      journal.setDelete(this.openCohorts, cohort);
      this.peers.dropEmptySets(journal, cohort.id);
    }
    this.armSweep(journal, cohort, cohortSweepAtMs(this, cohort));
  }

  /** Sets a cohort's sweep deadline (earlier entries for it become stale). */
  armSweep(journal: Journal, cohort: Cohort, atMs: number): void {
    if (this.cohortSweepAtMs.get(cohort) === atMs) return;
    journal.mapSet(this.cohortSweepAtMs, cohort, atMs);
    this.sweepDeadlines.push(atMs, { kind: 'cohort', cohort });
  }

  /** A cohort created or restored: its priorities, its id, and the matcher, open, sweep and quota indexes. */
  indexCohort(tx: CoreTx, cohort: Cohort): void {
    tx.journal.set(cohort, { priorityMs: criticalPathMs(cohort.record.schema, (stepId) => this.estimateMs(cohort, stepId)) });
    for (const step of cohort.ordered) cohort.ready.offer(step);
    tx.journal.mapSet(this.cohorts, cohort.id, cohort);
    this.refile(tx.journal, cohort);
    trackOpen(this, tx.journal, cohort);
  }
}
