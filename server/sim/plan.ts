import type { SchemaDef } from '../../shared/schema-file.js';
import { formatClock, formatDuration, formatPercent } from './sim-format.js';
import { simulate } from './simulate.js';
import { durationSource, singleCohortWorkload, stepDurationsMs } from './sim-workload.js';
import { criticalPathChain } from './step-durations.js';
import { policyNames, type SimReport } from './sim-types.js';

/**
 * `taskshard plan`: a dry run of the real scheduler core for K peers that
 * share one cohort and arrive together. The core is given the durations as
 * its recorded averages (what the authority knows after a run), so the plan
 * is what it would do with that knowledge.
 */
export interface PlanInput {
  readonly schema: SchemaDef;
  readonly peers: number;
  /** Measured durations (seconds) from a durations file; others use estimateSec, then the core default. */
  readonly durationsSec: ReadonlyMap<string, number>;
}

export interface PlannedRun {
  readonly stepId: string;
  readonly startMs: number;
  readonly endMs: number;
}

export interface Plan {
  readonly schemaId: string;
  readonly steps: number;
  readonly peers: number;
  readonly durationSources: Readonly<Record<'durations-file' | 'estimateSec' | 'default', number>>;
  readonly perPeer: readonly { readonly peerId: string; readonly runs: readonly PlannedRun[] }[];
  readonly makespanMs: number;
  readonly lowerBoundMs: number;
  readonly criticalPath: readonly string[];
  readonly criticalPathMs: number;
  readonly uniqueWorkMs: number;
  /** Every peer builds everything: machine time and the wait per peer. */
  readonly everyPeer: { readonly machineMs: number; readonly perPeerMs: number };
  /** The original Task Director policy on the same input. */
  readonly taskDirector: { readonly machineMs: number; readonly makespanMs: number };
  readonly taskshardMachineMs: number;
}

export function planSchedule(input: PlanInput): Plan {
  const durationsMs = stepDurationsMs(input.schema, input.durationsSec);
  const workload = singleCohortWorkload({ name: `plan-${input.schema.id}`, schema: input.schema, peers: input.peers, durationsMs, seedDurations: true });
  const report: SimReport = simulate(workload);
  const cohort = report.cohorts[0]!;
  const summary = (policy: string) => report.summaries.find((s) => s.policy === policy)!;
  const core = report.runs[policyNames.taskshard];
  const sources = { 'durations-file': 0, estimateSec: 0, default: 0 };
  for (const step of input.schema.steps) sources[durationSource(input.schema, step.id, input.durationsSec)]++;
  const ms = (stepId: string): number => durationsMs.get(stepId)!;
  return {
    schemaId: input.schema.id,
    steps: input.schema.steps.length,
    peers: input.peers,
    durationSources: sources,
    perPeer: workload.peers.map((p) => ({
      peerId: p.peerId,
      runs: core.runs.filter((r) => r.peerId === p.peerId && !r.aborted).map((r) => ({ stepId: r.stepId, startMs: r.startMs, endMs: r.endMs })),
    })),
    makespanMs: Math.max(...core.peers.map((p) => p.readyAtMs)),
    lowerBoundMs: cohort.lowerBoundMs,
    criticalPath: criticalPathChain(input.schema, ms),
    criticalPathMs: cohort.criticalPathMs,
    uniqueWorkMs: cohort.uniqueWorkMs,
    everyPeer: { machineMs: summary(policyNames.everyPeer).executedWorkMs, perPeerMs: cohort.uniqueWorkMs },
    taskDirector: { machineMs: summary(policyNames.taskDirector).executedWorkMs, makespanMs: summary(policyNames.taskDirector).timeToUniverseMs.max },
    taskshardMachineMs: summary(policyNames.taskshard).executedWorkMs,
  };
}

export function formatPlanText(plan: Plan): string {
  const src = plan.durationSources;
  const from = [
    src['durations-file'] > 0 ? `${src['durations-file']} from the durations file` : '',
    src.estimateSec > 0 ? `${src.estimateSec} from estimateSec` : '',
    src.default > 0 ? `${src.default} at the core's default` : '',
  ].filter(Boolean);
  const width = Math.max(...plan.perPeer.flatMap((p) => p.runs.map((r) => r.stepId.length)), 4);
  const lines = [
    `plan for schema "${plan.schemaId}": ${plan.steps} steps, ${plan.peers} peers arriving together; step durations: ${from.join(', ')}`,
    '(a dry run of the real scheduler core on a virtual clock, which knows these durations as recorded averages)',
    '',
  ];
  for (const peer of plan.perPeer) {
    const busy = peer.runs.reduce((sum, r) => sum + r.endMs - r.startMs, 0);
    lines.push(`${peer.peerId}: ${peer.runs.length} ${peer.runs.length === 1 ? 'step' : 'steps'}, busy ${formatDuration(busy)}, ready for its universe build at ${formatClock(plan.makespanMs)}`);
    for (const r of peer.runs) lines.push(`  ${formatClock(r.startMs)} -> ${formatClock(r.endMs)}  ${r.stepId.padEnd(width)}  ${formatDuration(r.endMs - r.startMs)}`);
    if (peer.runs.length === 0) lines.push('  (builds nothing: the other peers take every step)');
  }
  const savedMachine = plan.everyPeer.machineMs - plan.taskshardMachineMs;
  lines.push(
    '',
    `expected makespan: ${formatDuration(plan.makespanMs)} (lower bound ${formatDuration(plan.lowerBoundMs)}: critical path ${formatDuration(plan.criticalPathMs)} = ${plan.criticalPath.join(' -> ')}; work / peers ${formatDuration(plan.uniqueWorkMs / plan.peers)})`,
    `every peer building everything: ${formatDuration(plan.everyPeer.perPeerMs)} per peer, ${formatDuration(plan.everyPeer.machineMs)} machine time`,
    `with taskshard: ${formatDuration(plan.taskshardMachineMs)} machine time; saves ${formatDuration(savedMachine)} (${formatPercent(savedMachine, plan.everyPeer.machineMs)}) of machine time, and each peer starts its universe build ${formatDuration(plan.everyPeer.perPeerMs - plan.makespanMs)} sooner`,
    `for comparison, the original Task Director policy: ${formatDuration(plan.taskDirector.makespanMs)} makespan, ${formatDuration(plan.taskDirector.machineMs)} machine time`,
  );
  return `${lines.join('\n')}\n`;
}

/** The plan as JSON: seconds with up to three decimals. */
export function planJson(plan: Plan): Record<string, unknown> {
  const sec = (ms: number): number => Math.round(ms) / 1000;
  return {
    schema: plan.schemaId,
    steps: plan.steps,
    peers: plan.peers,
    durationSources: plan.durationSources,
    perPeer: plan.perPeer.map((p) => ({ peerId: p.peerId, steps: p.runs.map((r) => ({ stepId: r.stepId, startSec: sec(r.startMs), endSec: sec(r.endMs) })) })),
    makespanSec: sec(plan.makespanMs),
    lowerBoundSec: sec(plan.lowerBoundMs),
    criticalPath: plan.criticalPath,
    criticalPathSec: sec(plan.criticalPathMs),
    uniqueWorkSec: sec(plan.uniqueWorkMs),
    everyPeerBuildsEverything: { perPeerSec: sec(plan.everyPeer.perPeerMs), machineSec: sec(plan.everyPeer.machineMs) },
    taskshard: { makespanSec: sec(plan.makespanMs), machineSec: sec(plan.taskshardMachineMs) },
    savedMachineSec: sec(plan.everyPeer.machineMs - plan.taskshardMachineMs),
    savedPerPeerSec: sec(plan.everyPeer.perPeerMs - plan.makespanMs),
    taskDirectorBaseline: { makespanSec: sec(plan.taskDirector.makespanMs), machineSec: sec(plan.taskDirector.machineMs) },
  };
}
