import { loadavg } from 'node:os';
import { authorityLoadPhase, echoLoadPhase, type BenchProtocol, type PhaseOptions } from './bench-phases.js';

/**
 * The load mode of `npm run bench`: for each shape, `repeat` runs of (bare ws
 * echo baseline, then the authority), each run's figures as ratios against the
 * echo measured just before it, and the median of every figure over the runs.
 */

export interface LoadShape {
  readonly name: string;
  readonly protocol: BenchProtocol;
  readonly peers: number;
  readonly cohortSize: number;
  readonly steps: number;
}

/** The three shapes of issue #17, run when no shape flag is given. */
export const standardShapes: readonly LoadShape[] = Object.freeze([
  { name: '1000 peers, cohorts of 10 x 100 steps', protocol: 'v1', peers: 1000, cohortSize: 10, steps: 100 },
  { name: '200 peers, one cohort of 1000 steps', protocol: 'v1', peers: 200, cohortSize: 200, steps: 1000 },
  { name: 'Task Director: 200 clients, one group of 1000 tasks', protocol: 'task-director', peers: 200, cohortSize: 200, steps: 1000 },
]);

/** One run's figures (echo, then authority, back to back). */
export interface RunFigures {
  readonly echoMessagesPerSec: number;
  /** Echo server CPU (user + system) per echoed message, µs. */
  readonly echoCpuUsPerMessage: number;
  readonly echoLatencyP50Ms: number;
  readonly echoLatencyP99Ms: number;
  readonly assignmentsPerSec: number;
  /** Authority CPU (user + system, all threads) from the first hello to the last complete, per assignment, µs. */
  readonly cpuUsPerAssignment: number;
  /** Frames the authority sent per assignment (every frame a client received ÷ assign frames). */
  readonly framesPerAssignment: number;
  /** Row-level store writes per assignment (`taskshard_store_rows_written_total`). */
  readonly rowsPerAssignment: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly rssPerConnectedPeerKb: number;
  readonly throughputOverEcho: number;
  readonly cpuPerAssignmentOverEchoCpuPerMessage: number;
  readonly latencyP50OverEcho: number;
  readonly latencyP99OverEcho: number;
}

export interface ShapeResult {
  readonly shape: string;
  readonly protocol: BenchProtocol;
  readonly peers: number;
  readonly cohortSize: number;
  readonly cohorts: number;
  readonly stepsPerCohort: number;
  readonly assignmentsPerRun: number;
  readonly runs: readonly RunFigures[];
  /** Each figure's median over the runs (ratios: the median of the per-run ratios). */
  readonly median: RunFigures;
  readonly problems: readonly string[];
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
const ratio = (a: number, b: number): number => (b === 0 ? 0 : round(a / b, 3));

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : round((sorted[mid - 1]! + sorted[mid]!) / 2, 3);
}

function medianFigures(runs: readonly RunFigures[]): RunFigures {
  const keys = Object.keys(runs[0]!) as (keyof RunFigures)[];
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))])) as unknown as RunFigures;
}

/** Runs one shape `repeat` times; problems name what went wrong (missing assignments, error frames). */
export async function runShape(base: PhaseOptions, shape: LoadShape, repeat: number): Promise<ShapeResult> {
  const o: PhaseOptions = { ...base, peers: shape.peers, generators: Math.min(base.generators, shape.peers), cohortSize: shape.cohortSize, stepsPerCohort: shape.steps, protocol: shape.protocol };
  const cohorts = Math.ceil(shape.peers / shape.cohortSize);
  const expected = cohorts * shape.steps;
  const runs: RunFigures[] = [];
  const problems: string[] = [];
  for (let i = 1; i <= repeat; i++) {
    const tag = `${shape.name} [run ${i}/${repeat}, load ${loadavg()[0]!.toFixed(2)}]`;
    base.log(`${tag}: echo baseline, ${shape.peers} clients`);
    const echo = await echoLoadPhase(o);
    const auth = await authorityLoadPhase(o);
    const l = auth.load;
    if (l.rounds !== expected) problems.push(`run ${i}: expected ${expected} assignments, counted ${l.rounds}`);
    if (l.completes !== shape.peers) problems.push(`run ${i}: expected ${shape.peers} complete frames, counted ${l.completes}`);
    if (l.unexpectedCloses > 0) problems.push(`run ${i}: the authority closed ${l.unexpectedCloses} connections before complete`);
    if (Object.keys(l.errors).length > 0) problems.push(`run ${i}: error frames: ${JSON.stringify(l.errors)}${l.errors.RATE_LIMITED ? ' (the per-connection rate limiter: use more peers or fewer steps per peer)' : ''}`);
    const assignments = Math.max(1, l.rounds);
    const echoCpuUs = (echo.load.serverCpuSec * 1e6) / Math.max(1, echo.load.rounds);
    const cpuUs = (l.serverCpuSec * 1e6) / assignments;
    const run: RunFigures = {
      echoMessagesPerSec: echo.load.perSec,
      echoCpuUsPerMessage: round(echoCpuUs, 1),
      echoLatencyP50Ms: echo.load.latencyMs.p50,
      echoLatencyP99Ms: echo.load.latencyMs.p99,
      assignmentsPerSec: l.perSec,
      cpuUsPerAssignment: round(cpuUs, 1),
      framesPerAssignment: round(l.framesReceived / assignments, 2),
      rowsPerAssignment: round(auth.rowsWritten / assignments, 2),
      latencyP50Ms: l.latencyMs.p50,
      latencyP99Ms: l.latencyMs.p99,
      rssPerConnectedPeerKb: auth.connectedMemory.perConnectionKb,
      throughputOverEcho: ratio(l.perSec, echo.load.perSec),
      cpuPerAssignmentOverEchoCpuPerMessage: ratio(cpuUs, echoCpuUs),
      latencyP50OverEcho: ratio(l.latencyMs.p50, echo.load.latencyMs.p50),
      latencyP99OverEcho: ratio(l.latencyMs.p99, echo.load.latencyMs.p99),
    };
    base.log(
      `${tag}: ${run.assignmentsPerSec} assignments/s (${run.throughputOverEcho}x echo), ${run.cpuUsPerAssignment} µs CPU per assignment (${run.cpuPerAssignmentOverEchoCpuPerMessage}x echo's ${run.echoCpuUsPerMessage} µs per message), ` +
        `${run.framesPerAssignment} frames and ${run.rowsPerAssignment} rows per assignment, p99 ${run.latencyP99Ms} ms (${run.latencyP99OverEcho}x echo)`,
    );
    runs.push(run);
  }
  return {
    shape: shape.name,
    protocol: shape.protocol,
    peers: shape.peers,
    cohortSize: shape.cohortSize,
    cohorts,
    stepsPerCohort: shape.steps,
    assignmentsPerRun: expected,
    runs,
    median: medianFigures(runs),
    problems,
  };
}

/** Issue #17's targets, checked against the medians (reported, never a failure of the run). */
export function loadTargets(shapes: readonly ShapeResult[]): Record<string, { target: string; value: number; met: boolean }> {
  const out: Record<string, { target: string; value: number; met: boolean }> = {};
  const v1 = shapes.filter((s) => s.protocol === 'v1');
  for (const s of v1) {
    const m = s.median;
    const key = `${s.peers}x${s.cohortSize}x${s.stepsPerCohort}`;
    out[`${key}.cpu`] = { target: 'CPU per assignment <= 4x echo CPU per message', value: m.cpuPerAssignmentOverEchoCpuPerMessage, met: m.cpuPerAssignmentOverEchoCpuPerMessage <= 4 };
    out[`${key}.throughput`] = { target: 'assignments/s >= 0.3x echo messages/s', value: m.throughputOverEcho, met: m.throughputOverEcho >= 0.3 };
    out[`${key}.p99`] = { target: 'p99 <= 3x echo p99', value: m.latencyP99OverEcho, met: m.latencyP99OverEcho <= 3 };
    out[`${key}.frames`] = { target: '<= 3 frames per assignment', value: m.framesPerAssignment, met: m.framesPerAssignment <= 3 };
  }
  const small = v1.find((s) => s.cohortSize === 10 && s.stepsPerCohort === 100);
  const big = v1.find((s) => s.cohortSize === 200 && s.stepsPerCohort === 1000);
  if (small && big) {
    const value = ratio(big.median.throughputOverEcho, small.median.throughputOverEcho);
    out['oneCohortOverCohortsOf10'] = { target: 'one cohort of 200 x 1000: throughput/echo >= 0.8x that of cohorts of 10 x 100', value, met: value >= 0.8 };
  }
  return out;
}
