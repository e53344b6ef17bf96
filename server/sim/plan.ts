import type { SchemaDef } from '../../shared/schema-file.js';
import { simulate } from './simulate.js';
import { durationSource, peerIds, simRegistration, stepDurationsMs } from './sim-workload.js';
import { criticalPathChain } from './step-durations.js';
import { policyNames, type PolicyName, type SimReport, type SimWorkload } from './sim-types.js';

/**
 * `taskshard plan`: a dry run of the real scheduler core for K peers of one
 * change (one cohort), for each K asked, next to the four baselines on the
 * same durations and arrivals. The core is given the durations as its
 * recorded averages (what the authority knows after a run), so the plan is
 * what it would do with that knowledge.
 */
export interface PlanInput {
  readonly schema: SchemaDef;
  /** Peer counts to plan for, ascending, each ≥ 1. */
  readonly peerCounts: readonly number[];
  /** Peer i arrives at `arrivalsSec[i]`; peers past the end of the list arrive with the last one. Default [0]. */
  readonly arrivalsSec?: readonly number[];
  /** Each peer's universe build once its steps are done (seconds, default 0); counted in runner time. */
  readonly universeSec?: number;
  /** Measured durations (seconds) from a durations file; others use estimateSec, then the core default. */
  readonly durationsSec: ReadonlyMap<string, number>;
  /** Seed of baseline (c)'s random orders (default 1). */
  readonly seed?: number;
  /**
   * Labels of peer 1, 2, ... (`--peer gpu,arch:x64`); peers past the end have none. With labels, a step
   * goes only to a peer that has all it `requires`; a step no peer can build is left to the universe builds.
   */
  readonly peerLabels?: readonly (readonly string[])[];
}

export interface PlannedRun {
  readonly stepId: string;
  readonly startMs: number;
  readonly endMs: number;
}

/** One policy's figures for one peer count. */
export interface PolicyFigures {
  /** First arrival to the last peer ready for its universe build. */
  readonly makespanMs: number;
  /** Build time: machine time spent building steps, every copy counted. */
  readonly buildMs: number;
  /** Runner time: Σ over peers of (ready − arrival + universe), waiting included. */
  readonly runnerMs: number;
}

export interface PlannedPeer {
  readonly peerId: string;
  /** Its labels (empty: none). */
  readonly labels: readonly string[];
  readonly arrivalMs: number;
  readonly readyAtMs: number;
  readonly runs: readonly PlannedRun[];
  /** Building every step alone minus (ready − arrival); negative when waiting cost more. */
  readonly savedMs: number;
}

export interface CountPlan {
  readonly peers: number;
  readonly lowerBoundMs: number;
  readonly perPeer: readonly PlannedPeer[];
  /** Steps no peer built because none had the labels they require (unshared: each universe build covers them). */
  readonly unshared: readonly string[];
  /** taskshard first, then (b), (c), (a), (d). */
  readonly policies: Readonly<Record<PolicyName, PolicyFigures>>;
}

export interface Plan {
  readonly schemaId: string;
  readonly steps: number;
  readonly durationSources: Readonly<Record<'durations-file' | 'estimateSec' | 'default', number>>;
  readonly arrivalsSec: readonly number[];
  readonly universeMs: number;
  readonly seed: number;
  readonly criticalPath: readonly string[];
  readonly criticalPathMs: number;
  /** Every step built once: what one peer building alone spends. */
  readonly uniqueWorkMs: number;
  readonly counts: readonly CountPlan[];
  /** The smallest count whose taskshard makespan is within 5 % of the best one. */
  readonly recommendedPeers: number;
}

/** A count is recommended when its makespan is at most this much over the best. */
export const recommendWithin = 0.05;

export function planSchedule(input: PlanInput): Plan {
  if (input.peerCounts.length === 0) throw new Error('plan: no peer counts');
  const arrivalsSec = input.arrivalsSec && input.arrivalsSec.length > 0 ? input.arrivalsSec : [0];
  const universeMs = Math.round((input.universeSec ?? 0) * 1000);
  const seed = input.seed ?? 1;
  const durationsMs = stepDurationsMs(input.schema, input.durationsSec);
  const counts = input.peerCounts.map((k) => planCount(input.schema, k, arrivalsSec, universeMs, seed, durationsMs, input.peerLabels ?? []));
  const sources = { 'durations-file': 0, estimateSec: 0, default: 0 };
  for (const step of input.schema.steps) sources[durationSource(input.schema, step.id, input.durationsSec)]++;
  const ms = (stepId: string): number => durationsMs.get(stepId)!;
  const chain = criticalPathChain(input.schema, ms);
  const best = Math.min(...counts.map((c) => c.policies.taskshard.makespanMs));
  const recommended = counts.find((c) => c.policies.taskshard.makespanMs <= best * (1 + recommendWithin))!;
  return {
    schemaId: input.schema.id,
    steps: input.schema.steps.length,
    durationSources: sources,
    arrivalsSec,
    universeMs,
    seed,
    criticalPath: chain,
    criticalPathMs: chain.reduce((sum, id) => sum + ms(id), 0),
    uniqueWorkMs: [...durationsMs.values()].reduce((a, b) => a + b, 0),
    counts,
    recommendedPeers: recommended.peers,
  };
}

/** Arrival of peer i (0-based) in ms. */
export function arrivalMs(arrivalsSec: readonly number[], i: number): number {
  return Math.round(arrivalsSec[Math.min(i, arrivalsSec.length - 1)]! * 1000);
}

function planCount(
  schema: SchemaDef,
  k: number,
  arrivalsSec: readonly number[],
  universeMs: number,
  seed: number,
  durationsMs: ReadonlyMap<string, number>,
  peerLabels: readonly (readonly string[])[],
): CountPlan {
  const labelsOf = (i: number): string[] => [...new Set(peerLabels[i] ?? [])].sort();
  const workload: SimWorkload = {
    name: `plan-${schema.id}-${k}`,
    schema,
    durationsMs,
    jitter: 0,
    seed,
    peers: peerIds(k).map((peerId, i) => ({
      peerId,
      arrivalMs: arrivalMs(arrivalsSec, i),
      registration: simRegistration(labelsOf(i).length === 0 ? {} : { labels: labelsOf(i) }),
    })),
    seedDurations: true,
    universeMs,
  };
  const report: SimReport = simulate(workload);
  if (report.cohorts.length !== 1) throw new Error(`plan: the core formed ${report.cohorts.length} cohorts for one change`);
  const cohort = report.cohorts[0]!;
  const firstArrival = Math.min(...workload.peers.map((p) => p.arrivalMs));
  const policies = {} as Record<PolicyName, PolicyFigures>;
  for (const s of report.summaries) {
    const lastReady = Math.max(...report.runs[s.policy].peers.map((p) => p.readyAtMs));
    policies[s.policy] = { makespanMs: lastReady - firstArrival, buildMs: s.executedWorkMs, runnerMs: s.runnerTimeMs };
  }
  const core = report.runs[policyNames.taskshard];
  const perPeer = core.peers.map((p, i) => ({
    peerId: p.peerId,
    labels: labelsOf(i),
    arrivalMs: p.arrivalMs,
    readyAtMs: p.readyAtMs,
    runs: core.runs.filter((r) => r.peerId === p.peerId && !r.aborted).map((r) => ({ stepId: r.stepId, startMs: r.startMs, endMs: r.endMs })),
    savedMs: cohort.uniqueWorkMs - (p.readyAtMs - p.arrivalMs),
  }));
  const built = new Set(core.runs.filter((r) => !r.aborted).map((r) => r.stepId));
  const unshared = schema.steps.filter((s) => !built.has(s.id)).map((s) => s.id);
  return { peers: k, lowerBoundMs: cohort.lowerBoundMs, perPeer, unshared, policies };
}
