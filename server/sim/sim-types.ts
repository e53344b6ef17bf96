import type { CoreConfig } from '../core/core-types.js';
import type { Registration } from '../core/records.js';
import type { SchemaDef } from '../../shared/schema-file.js';

/**
 * The simulator's inputs and outputs. Times are virtual milliseconds after the
 * start of the simulation (the first possible arrival is 0).
 */

/** One simulated CI job. */
export interface SimPeerSpec {
  readonly peerId: string;
  /** When the job connects, ms after the start. */
  readonly arrivalMs: number;
  /** What it tells the authority in `hello`: its source state and pipeline. */
  readonly registration: Registration;
}

/** Everything a simulation needs; built by callers from files or flags (the simulator reads nothing itself). */
export interface SimWorkload {
  readonly name: string;
  readonly schema: SchemaDef;
  /** True duration of every schema step in ms, before jitter. */
  readonly durationsMs: ReadonlyMap<string, number>;
  /**
   * Each step of each cohort runs for `duration × (1 + jitter × u)`, u uniform
   * in [-1, 1) drawn from the seed, the cohort and the step. 0 means exact.
   */
  readonly jitter: number;
  readonly seed: number;
  readonly peers: readonly SimPeerSpec[];
  /**
   * Give the core the true durations as its recorded moving averages, as after
   * earlier runs. Otherwise it knows only `estimateSec` or its default.
   */
  readonly seedDurations: boolean;
  /**
   * How long each peer's universe build takes once its steps are done (ms,
   * default 0). The same under every policy; it counts in runner time.
   */
  readonly universeMs?: number;
}

export interface SimOptions {
  /** Overrides of the core's tunables (defaults: `defaultCoreConfig`). */
  readonly core?: Partial<CoreConfig>;
  /** Safety cap on processed events; a run past it throws. Default 5,000,000. */
  readonly maxEvents?: number;
}

/**
 * The policies of one run, in report order: taskshard, then the baselines
 * users really have, (b) and (c), then (a) and (d).
 */
export const policyNames = Object.freeze({
  taskshard: 'taskshard',
  /** (b) A shared remote cache; every peer builds in schema order and takes what another peer finished. */
  sharedCacheSchemaOrder: 'baseline-shared-cache-schema-order',
  /** (c) The same with each peer in its own seeded random order. */
  sharedCacheRandomOrder: 'baseline-shared-cache-random-order',
  /** (a) No cache: every peer builds everything. */
  everyPeer: 'baseline-every-peer-builds-everything',
  /** (d) The original Task Director dispatch policy. */
  taskDirector: 'baseline-task-director',
});
export type PolicyName = (typeof policyNames)[keyof typeof policyNames];

export const runKinds = Object.freeze({
  /** A step the policy handed to the peer. */
  assigned: 'assigned',
  /** A straggler backup copy (taskshard). */
  backup: 'backup',
  /** A step the peer had to build inside another one because it was not in the cache yet (Task Director baseline). */
  missingNeed: 'missing-need',
  /** A step the peer built for itself (every-peer and shared-cache baselines). */
  own: 'own',
});
export type RunKind = (typeof runKinds)[keyof typeof runKinds];

/** A stretch of machine time one peer spent building one step. */
export interface StepRun {
  readonly peerId: string;
  readonly cohort: number;
  readonly stepId: string;
  readonly kind: RunKind;
  readonly startMs: number;
  endMs: number;
  /** Stopped before it finished (a backup copy that lost the race, or vice versa). */
  aborted: boolean;
}

/** When one peer arrived and when it could start its universe build. */
export interface PeerTimeline {
  readonly peerId: string;
  readonly cohort: number;
  readonly arrivalMs: number;
  readonly readyAtMs: number;
}

/** What one policy did with the whole workload. */
export interface PolicyRun {
  readonly policy: PolicyName;
  readonly runs: readonly StepRun[];
  readonly peers: readonly PeerTimeline[];
}

/** A cohort as the real core formed it; the baselines use the same grouping. */
export interface SimCohort {
  /** 0-based, in order of creation. */
  readonly index: number;
  /** The id the core gave it. */
  readonly coreId: string;
  readonly members: readonly SimPeerSpec[];
  readonly firstArrivalMs: number;
  /** Sum of the cohort's step durations: the work if every step is built once. */
  readonly uniqueWorkMs: number;
  readonly criticalPathMs: number;
  /** max(critical path, smallest T with Σ max(0, T − arrival_i) ≥ unique work): no schedule can beat it. */
  readonly lowerBoundMs: number;
}

export interface Stats {
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

export interface PolicySummary {
  readonly policy: PolicyName;
  /** Build time: machine time spent building steps (every copy, aborted ones included). */
  readonly executedWorkMs: number;
  /**
   * Runner time: Σ over peers of (ready − arrival + universe build), i.e. how
   * long the CI runners were held, waiting included.
   */
  readonly runnerTimeMs: number;
  /** Executed machine time ÷ the workload's unique work (1 = nothing built twice). */
  readonly executedOverUnique: number;
  /** Per cohort: (last member ready − first arrival) ÷ lower bound; mean and max over cohorts. */
  readonly makespanOverLowerBound: { readonly mean: number; readonly max: number };
  /** Per peer: ready for its universe build − arrival. */
  readonly timeToUniverseMs: Stats;
  readonly perPeerTimeToUniverseMs: Readonly<Record<string, number>>;
  /**
   * Per peer: what it would have spent building every step alone (its cohort's
   * unique work) minus what it spent, building and waiting (ready − arrival).
   * Negative when it waited longer than building alone would have taken.
   */
  readonly perPeerSavedMs: Readonly<Record<string, number>>;
  /** Runs that were stopped before finishing. */
  readonly abortedRuns: number;
}

export interface SimReport {
  readonly workload: string;
  readonly seed: number;
  readonly peers: number;
  readonly steps: number;
  readonly cohorts: readonly SimCohort[];
  readonly uniqueWorkMs: number;
  /** The universe build each peer runs at the end (ms), counted in runner time. */
  readonly universeMs: number;
  readonly runs: Readonly<Record<PolicyName, PolicyRun>>;
  readonly summaries: readonly PolicySummary[];
}
