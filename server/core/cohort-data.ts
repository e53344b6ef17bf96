import { BinaryHeap } from './binary-heap.js';
import type { Cohort } from './cohort.js';
import type { Journal } from './journal.js';
import type { CohortRecord, LeaseRecord, Registration, StepRecord } from './records.js';
import { ReadyQueue } from './ready-queue.js';
import { schemaLayout } from './schema-layout.js';
import type { SchedulerState } from './scheduler-state.js';
import { durationKey, matchKey, patchsetSet, reposOf, sourceKey } from './source-state.js';
import { quotaKey } from './source-quota.js';
import { isResolved } from './step-status.js';

/**
 * Duration keys per schema object (for the last repo it was used with): a cache of a pure function of
 * the repo, the schema id and the step id, held weakly (it goes with the schema object).
 */
const sharedDurationKeys = new WeakMap<object, { readonly repo: string; readonly keys: Map<string, string> }>();

/**
 * A cohort's in-memory working set: its record, its steps in schema order,
 * the reverse `needs` edges, priorities, its leases (live and ended) and its
 * members. Every change goes through a {@link Journal} (the collections are
 * typed read-only). The transitions of its steps and leases are in
 * cohort-leases.ts, what it does per input in cohort.ts (both extend this).
 */
export class CohortData {
  readonly steps = new Map<string, StepRecord>();
  /** Steps in schema order. */
  readonly ordered: StepRecord[] = [];
  /** Each step's index in schema order (shared by the cohorts of one schema object: schema-layout.ts). */
  readonly schemaIndex: ReadonlyMap<string, number>;
  /** The steps that need each step (shared likewise). */
  readonly dependents: ReadonlyMap<string, readonly string[]>;
  /** Every lease of the cohort, live or ended (ended ones fence late completions); the scheduler routes a lease id here (`leaseOwners`). */
  readonly leases: ReadonlyMap<string, LeaseRecord> = new Map();
  /** Live leases per step (at most two: the original and a backup); each list is replaced, never mutated. */
  readonly liveLeases: ReadonlyMap<string, readonly LeaseRecord[]> = new Map();
  /** Every peer that ever joined, in join order. */
  readonly members: ReadonlySet<string> = new Set();
  /** Each member's place in `members` (join order decides who a dispatch serves first). */
  readonly memberOrder: ReadonlyMap<string, number> = new Map();
  readonly patchsets: ReadonlySet<string>;
  /** Repo -> base ref of every member's source state (one entry unless members are multi-repo). */
  readonly repos: ReadonlyMap<string, string> = new Map();
  readonly matchKey: string;
  readonly sourceKey: string;
  /** Its quota source (source-quota.ts `quotaKey`: repo + cache id, both fixed at creation), made once. */
  readonly quotaKey: string;
  /** Leases per step that were ended for their age (`--max-lease-age`); each makes the next lease's limit 4 × longer. */
  readonly leaseTimeouts: ReadonlyMap<string, number> = new Map();
  /** Critical-path priority per step, in ms (set once, when the cohort is indexed). */
  readonly priorityMs: ReadonlyMap<string, number> = new Map();
  /** Steps ready to lease, best first (ready-queue.ts); filled when the cohort is indexed, then kept as steps change. */
  readonly ready = new ReadyQueue(
    (step) => step.status === 'pending' && this.needsMet(step.stepId),
    (step) => ({ priorityMs: this.priorityMs.get(step.stepId) ?? 0, index: this.schemaIndex.get(step.stepId)! }),
  );
  /**
   * Live leases by start, oldest first: pushed when a lease becomes live, dropped when they come up
   * ended (or never committed: an input rolled back). Tells a dispatch whether any lease is old
   * enough for a backup copy without looking at every live lease (`oldestLiveStartMs`).
   */
  readonly liveStarts = new BinaryHeap<LeaseRecord>((a, b) => a.startedAtMs < b.startedAtMs);
  /** Steps not yet succeeded or failed (a derived counter; invariants.ts recounts it). */
  readonly unresolved: number = 0;
  /** Failed steps (derived, recounted likewise). */
  readonly failedCount: number = 0;
  /**
   * Each step's key into the recorded durations, made on first use. It depends only on the repo, the
   * schema id and the step id, so cohorts of one schema object and repo share one map
   * ({@link sharedDurationKeys}): a new cohort of 100 steps makes no keys when an earlier one did.
   */
  private readonly durationKeys: Map<string, string>;
  /** Some step `requires` labels: only then do labels change who gets what (label-free cohorts skip every label check). */
  readonly hasRequirements: boolean;

  /**
   * @param host the scheduler's shared state: the peers, the lease routing index, deadlines, memos
   * and durations (a cohort reaches its members through it).
   */
  constructor(
    protected readonly host: SchedulerState,
    readonly record: CohortRecord,
    steps: readonly StepRecord[],
  ) {
    let unresolved = 0;
    let failedCount = 0;
    const layout = schemaLayout(record.schema);
    this.schemaIndex = layout.index;
    this.dependents = layout.dependents;
    // Rows in schema order (a new cohort's, and a restored one's as the store loads them) are taken as they come.
    const defs = record.schema.steps;
    let byId: Map<string, StepRecord> | null = null;
    for (let i = 0; i < defs.length; i++) {
      const id = defs[i]!.id;
      let step = steps.length === defs.length && steps[i]!.stepId === id ? steps[i] : undefined;
      if (step === undefined) step = (byId ??= new Map(steps.map((s) => [s.stepId, s]))).get(id);
      if (!step) throw new Error(`cohort ${record.cohortId} has no row for step ${id}`);
      this.steps.set(id, step);
      this.ordered.push(step);
      if (!isResolved(step.status)) unresolved++;
      if (step.status === 'failed') failedCount++;
    }
    this.unresolved = unresolved;
    this.failedCount = failedCount;
    this.hasRequirements = defs.some((def) => def.requires !== undefined && def.requires.length > 0);
    this.patchsets = new Set(record.patchsets);
    (this.repos as Map<string, string>).set(record.repo, record.baseRef);
    this.matchKey = matchKey(record, record.digest);
    this.sourceKey = sourceKey(record.baseSha, patchsetSet(record.patchsets), record.cohortKey);
    this.quotaKey = quotaKey(record);
    const shared = sharedDurationKeys.get(record.schema);
    if (shared !== undefined && shared.repo === record.repo) {
      this.durationKeys = shared.keys;
    } else {
      this.durationKeys = new Map();
      sharedDurationKeys.set(record.schema, { repo: record.repo, keys: this.durationKeys });
    }
  }

  /** A peer joins (or is restored into) the cohort. */
  addMember(journal: Journal, peerId: string, reg: Pick<Registration, 'repo' | 'baseRef' | 'repos'>): void {
    if (!this.members.has(peerId)) journal.mapSet(this.memberOrder, peerId, this.members.size);
    journal.setAdd(this.members, peerId);
    this.addRepos(journal, reg);
  }

  /** Records the repos of a member's source state (the creator's first). */
  private addRepos(journal: Journal, reg: Pick<Registration, 'repo' | 'baseRef' | 'repos'>): void {
    if (reg.repos && reg.repos.length > 0) journal.mapDelete(this.repos, this.record.repo);
    for (const { repo, baseRef } of reposOf(reg)) if (!this.repos.has(repo)) journal.mapSet(this.repos, repo, baseRef);
  }

  /** Each of the joiner's repos is in this cohort with the same base ref (any base ref, in a cohort named by a cohort key). */
  reposCover(reg: Pick<Registration, 'repo' | 'baseRef' | 'repos'>): boolean {
    const keyed = this.record.cohortKey !== null;
    return reposOf(reg).every(({ repo, baseRef }) => (keyed ? this.repos.has(repo) : this.repos.get(repo) === baseRef));
  }

  /** This cohort as the whole class: every instance is a `Cohort` (cohort.ts); the layers only split its code by role. */
  protected get self(): Cohort {
    return this as unknown as Cohort;
  }

  get id(): string {
    return this.record.cohortId;
  }

  /** The step's key into the recorded durations (repo, schema id, step id), cached. */
  durationKeyOf(stepId: string): string {
    let key = this.durationKeys.get(stepId);
    if (key === undefined) this.durationKeys.set(stepId, (key = durationKey(this.record.repo, this.record.schema.id, stepId)));
    return key;
  }

  needsOf(stepId: string): readonly string[] {
    return this.record.schema.steps[this.schemaIndex.get(stepId)!]!.needs;
  }

  /** The labels a peer needs to build the step; undefined: any peer. */
  requiresOf(stepId: string): readonly string[] | undefined {
    return this.record.schema.steps[this.schemaIndex.get(stepId)!]!.requires;
  }

  targetOf(stepId: string): string {
    return this.record.schema.steps[this.schemaIndex.get(stepId)!]!.target;
  }

  /** All of the step's needs have succeeded. */
  needsMet(stepId: string): boolean {
    for (const need of this.needsOf(stepId)) if (this.steps.get(need)!.status !== 'succeeded') return false;
    return true;
  }

  /** When the oldest live lease started, or null when none is live (ended entries on top are dropped, journaled). */
  oldestLiveStartMs(journal: Journal): number | null {
    for (let top = this.liveStarts.peek(); top !== null; top = this.liveStarts.peek()) {
      if (top.end === null && this.leases.get(top.leaseId) === top) return top.startedAtMs;
      this.liveStarts.pop(journal);
    }
    return null;
  }

  live(stepId: string): readonly LeaseRecord[] {
    return this.liveLeases.get(stepId) ?? [];
  }

  /** Adjusts the derived counters when a step changes between unresolved, succeeded and failed. */
  count(journal: Journal, unresolvedDelta: number, failedDelta: number): void {
    const self = this as CohortData;
    journal.field(self, 'unresolved', this.unresolved + unresolvedDelta);
    journal.field(self, 'failedCount', this.failedCount + failedDelta);
  }

  /** Joinable by new peers: not isolated, not cancelled, no failed step. */
  get joinable(): boolean {
    return !this.record.isolated && this.record.status !== 'cancelled' && this.failedCount === 0;
  }
}
