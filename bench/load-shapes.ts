import { loadavg } from 'node:os';
import { authorityLoadPhase, echoLoadPhase, type BenchProtocol, type EchoLoadResult, type PassResult, type PhaseOptions } from './bench-phases.js';

/**
 * The load mode of `npm run bench`: for each shape, `repeat` runs of (bare ws
 * echo baseline, then one authority process serving the shape twice: a cold
 * pass on the fresh process, then a warm pass with new peers and cohorts), each
 * pass's figures as ratios against the echo measured just before it, and the
 * median of every figure over the runs.
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

/** One pass of the authority (cold: the fresh process's first; warm: the same shape again on that process). */
export interface PassFigures {
  readonly assignmentsPerSec: number;
  /** Authority CPU (user + system, all threads) from the pass's first hello to its last complete, per assignment, µs. */
  readonly cpuUsPerAssignment: number;
  /**
   * Of that, the main thread's time on a CPU, µs per assignment (the rest: the checkpointer, GC
   * helpers, libuv's pool), and the main thread's time runnable but waiting for a CPU (wall time a
   * V8 profile still samples); null where /proc schedstat cannot be read.
   */
  readonly mainThreadCpuUsPerAssignment: number | null;
  readonly mainThreadWaitUsPerAssignment: number | null;
  /** The load generators' CPU (all their processes) per assignment, µs: on 2 cores it competes with the authority. */
  readonly clientCpuUsPerAssignment: number;
  /** Frames the authority sent per assignment (every frame a client received ÷ assign frames). */
  readonly framesPerAssignment: number;
  /** Row-level store writes per assignment (`taskshard_store_rows_written_total`). */
  readonly rowsPerAssignment: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly throughputOverEcho: number;
  readonly cpuPerAssignmentOverEchoCpuPerMessage: number;
  readonly latencyP50OverEcho: number;
  readonly latencyP99OverEcho: number;
}

/** One run's figures: the echo, then one authority process, its cold pass and (unless --cold-only) its warm pass. */
export interface RunFigures {
  readonly echoMessagesPerSec: number;
  /** Echo server CPU (user + system) per echoed message, µs. */
  readonly echoCpuUsPerMessage: number;
  /** The load generators' CPU per echoed message, µs. */
  readonly echoClientCpuUsPerMessage: number;
  readonly echoLatencyP50Ms: number;
  readonly echoLatencyP99Ms: number;
  /** Authority RSS per connected peer before the cold pass's hellos, KiB. */
  readonly rssPerConnectedPeerKb: number;
  /** The first pass on a fresh authority process: V8 compiles and optimises as it goes. */
  readonly cold: PassFigures;
  /** The same shape again on the same process, new peers and cohorts: what a long-running authority spends. Null with --cold-only. */
  readonly warm: PassFigures | null;
  /** warm ÷ cold of CPU per assignment, rate and p99 (null with --cold-only). */
  readonly warmOverCold: { readonly cpuUsPerAssignment: number; readonly assignmentsPerSec: number; readonly latencyP99Ms: number } | null;
}

export interface ShapeResult {
  readonly shape: string;
  readonly protocol: BenchProtocol;
  readonly peers: number;
  readonly cohortSize: number;
  readonly cohorts: number;
  readonly stepsPerCohort: number;
  readonly assignmentsPerRun: number;
  /**
   * Passes per authority process: the cold pass, the unmeasured warm-up passes, the warm pass (1 with
   * --cold-only). The warm pass comes after at least `--warm-up-assignments` assignments (default
   * 10,000: one cold pass of cohorts of 10 x 100, ten of a 1,000-step shape), or after 20 passes.
   */
  readonly passesPerRun: number;
  /** Assignments the process served before the warm pass (the cold pass included). */
  readonly warmUpAssignments: number;
  readonly runs: readonly RunFigures[];
  /** Each figure's median over the runs (ratios: the median of the per-run ratios). */
  readonly median: RunFigures;
  readonly problems: readonly string[];
}

/** The most passes an authority process serves before its warm pass (the cold one included). */
export const maxPassesBeforeWarm = 20;

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
const ratio = (a: number, b: number): number => (b === 0 ? 0 : round(a / b, 3));

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : round((sorted[mid - 1]! + sorted[mid]!) / 2, 3);
}

/** Medians of every number, field by field, through nested objects; a field that is null in any run is null. */
function medianOf<T>(runs: readonly T[]): T {
  const first = runs[0] as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first)) {
    const values = runs.map((r) => (r as Record<string, unknown>)[key]);
    if (values.some((v) => v === null)) out[key] = null;
    else if (typeof first[key] === 'number') out[key] = median(values as number[]);
    else out[key] = medianOf(values as object[]);
  }
  return out as T;
}

function passFigures(pass: PassResult, echo: EchoLoadResult, expected: number, label: string, problems: string[], peers: number): PassFigures {
  const l = pass.load;
  if (l.rounds !== expected) problems.push(`${label}: expected ${expected} assignments, counted ${l.rounds}`);
  // Each pass builds every step of its own cohorts: nothing is served from an earlier pass's memos.
  if (pass.stepsBuilt !== expected || pass.stepsReused !== 0) problems.push(`${label}: expected ${expected} steps built and none reused, the authority counted ${pass.stepsBuilt} built and ${pass.stepsReused} reused`);
  if (l.completes !== peers) problems.push(`${label}: expected ${peers} complete frames, counted ${l.completes}`);
  if (l.unexpectedCloses > 0) problems.push(`${label}: the authority closed ${l.unexpectedCloses} connections before complete`);
  if (Object.keys(l.errors).length > 0) problems.push(`${label}: error frames: ${JSON.stringify(l.errors)}${l.errors.RATE_LIMITED ? ' (the per-connection rate limiter: use more peers or fewer steps per peer)' : ''}`);
  const assignments = Math.max(1, l.rounds);
  const echoCpuUs = (echo.load.serverCpuSec * 1e6) / Math.max(1, echo.load.rounds);
  const cpuUs = (l.serverCpuSec * 1e6) / assignments;
  return {
    assignmentsPerSec: l.perSec,
    cpuUsPerAssignment: round(cpuUs, 1),
    mainThreadCpuUsPerAssignment: pass.mainThread === null ? null : round((pass.mainThread.runSec * 1e6) / assignments, 1),
    mainThreadWaitUsPerAssignment: pass.mainThread === null ? null : round((pass.mainThread.waitSec * 1e6) / assignments, 1),
    clientCpuUsPerAssignment: round((l.clientCpuSec * 1e6) / assignments, 1),
    framesPerAssignment: round(l.framesReceived / assignments, 2),
    rowsPerAssignment: round(pass.rowsWritten / assignments, 2),
    latencyP50Ms: l.latencyMs.p50,
    latencyP99Ms: l.latencyMs.p99,
    throughputOverEcho: ratio(l.perSec, echo.load.perSec),
    cpuPerAssignmentOverEchoCpuPerMessage: ratio(cpuUs, echoCpuUs),
    latencyP50OverEcho: ratio(l.latencyMs.p50, echo.load.latencyMs.p50),
    latencyP99OverEcho: ratio(l.latencyMs.p99, echo.load.latencyMs.p99),
  };
}

const passLine = (name: string, p: PassFigures, echoCpuUs: number): string =>
  `${name} ${p.assignmentsPerSec} assignments/s (${p.throughputOverEcho}x echo), ${p.cpuUsPerAssignment} µs CPU per assignment (${p.cpuPerAssignmentOverEchoCpuPerMessage}x echo's ${echoCpuUs} µs per message; main thread ${p.mainThreadCpuUsPerAssignment} µs, waiting for a CPU ${p.mainThreadWaitUsPerAssignment} µs; load client ${p.clientCpuUsPerAssignment} µs), ` +
  `${p.framesPerAssignment} frames and ${p.rowsPerAssignment} rows per assignment, p99 ${p.latencyP99Ms} ms (${p.latencyP99OverEcho}x echo)`;

/**
 * Runs one shape `repeat` times; problems name what went wrong (missing assignments, error frames).
 * `warmUpAssignments` null: one pass per authority process (--cold-only); else the cold pass, as many
 * more unmeasured passes as make at least that many assignments (at most {@link maxPassesBeforeWarm}
 * passes in all), then the warm pass.
 */
export async function runShape(base: PhaseOptions, shape: LoadShape, repeat: number, warmUpAssignments: number | null = 10_000): Promise<ShapeResult> {
  const o: PhaseOptions = { ...base, peers: shape.peers, generators: Math.min(base.generators, shape.peers), cohortSize: shape.cohortSize, stepsPerCohort: shape.steps, protocol: shape.protocol };
  const cohorts = Math.ceil(shape.peers / shape.cohortSize);
  const expected = cohorts * shape.steps;
  const warm = warmUpAssignments !== null;
  // A small shape would need hundreds of passes (each connects and closes every peer): at most maxPassesBeforeWarm.
  const passes = warm ? Math.min(maxPassesBeforeWarm, Math.max(1, Math.ceil(warmUpAssignments / expected))) + 1 : 1;
  const runs: RunFigures[] = [];
  const problems: string[] = [];
  for (let i = 1; i <= repeat; i++) {
    const tag = `${shape.name} [run ${i}/${repeat}, load ${loadavg()[0]!.toFixed(2)}]`;
    base.log(`${tag}: echo baseline, ${shape.peers} clients`);
    const echo = await echoLoadPhase(o);
    const auth = await authorityLoadPhase(o, 0, 'bad-frames', passes);
    const cold = passFigures(auth.passes[0]!, echo, expected, `run ${i} cold`, problems, shape.peers);
    const warmPass = auth.passes.length > 1 ? passFigures(auth.passes[auth.passes.length - 1]!, echo, expected, `run ${i} warm`, problems, shape.peers) : null;
    const echoCpuUs = round((echo.load.serverCpuSec * 1e6) / Math.max(1, echo.load.rounds), 1);
    const run: RunFigures = {
      echoMessagesPerSec: echo.load.perSec,
      echoCpuUsPerMessage: echoCpuUs,
      echoClientCpuUsPerMessage: round((echo.load.clientCpuSec * 1e6) / Math.max(1, echo.load.rounds), 1),
      echoLatencyP50Ms: echo.load.latencyMs.p50,
      echoLatencyP99Ms: echo.load.latencyMs.p99,
      rssPerConnectedPeerKb: auth.connectedMemory.perConnectionKb,
      cold,
      warm: warmPass,
      warmOverCold:
        warmPass === null
          ? null
          : {
              cpuUsPerAssignment: ratio(warmPass.cpuUsPerAssignment, cold.cpuUsPerAssignment),
              assignmentsPerSec: ratio(warmPass.assignmentsPerSec, cold.assignmentsPerSec),
              latencyP99Ms: ratio(warmPass.latencyP99Ms, cold.latencyP99Ms),
            },
    };
    base.log(`${tag}: ${passLine('cold', cold, echoCpuUs)}${warmPass ? `; ${passLine('warm', warmPass, echoCpuUs)} (load ${loadavg()[0]!.toFixed(2)})` : ''}`);
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
    passesPerRun: passes,
    warmUpAssignments: (passes - 1) * expected,
    runs,
    median: medianOf(runs),
    problems,
  };
}

/**
 * Issue #17's targets, checked against the medians (reported, never a failure of the run): on the warm
 * pass (an authority runs for months; `value`), with the cold pass's figure next to it (`cold`); with
 * --cold-only, on the cold pass.
 */
export function loadTargets(shapes: readonly ShapeResult[]): Record<string, { target: string; judgedOn: 'warm' | 'cold'; value: number; cold: number; met: boolean }> {
  const out: Record<string, { target: string; judgedOn: 'warm' | 'cold'; value: number; cold: number; met: boolean }> = {};
  const judged = (s: ShapeResult): PassFigures => s.median.warm ?? s.median.cold;
  const on = (s: ShapeResult): 'warm' | 'cold' => (s.median.warm ? 'warm' : 'cold');
  const v1 = shapes.filter((s) => s.protocol === 'v1');
  for (const s of v1) {
    const m = judged(s);
    const c = s.median.cold;
    const key = `${s.peers}x${s.cohortSize}x${s.stepsPerCohort}`;
    out[`${key}.cpu`] = { target: 'CPU per assignment <= 4x echo CPU per message', judgedOn: on(s), value: m.cpuPerAssignmentOverEchoCpuPerMessage, cold: c.cpuPerAssignmentOverEchoCpuPerMessage, met: m.cpuPerAssignmentOverEchoCpuPerMessage <= 4 };
    out[`${key}.throughput`] = { target: 'assignments/s >= 0.3x echo messages/s', judgedOn: on(s), value: m.throughputOverEcho, cold: c.throughputOverEcho, met: m.throughputOverEcho >= 0.3 };
    out[`${key}.p99`] = { target: 'p99 <= 3x echo p99', judgedOn: on(s), value: m.latencyP99OverEcho, cold: c.latencyP99OverEcho, met: m.latencyP99OverEcho <= 3 };
    out[`${key}.frames`] = { target: '<= 3 frames per assignment', judgedOn: on(s), value: m.framesPerAssignment, cold: c.framesPerAssignment, met: m.framesPerAssignment <= 3 };
  }
  const small = v1.find((s) => s.cohortSize === 10 && s.stepsPerCohort === 100);
  const big = v1.find((s) => s.cohortSize === 200 && s.stepsPerCohort === 1000);
  if (small && big) {
    const value = ratio(judged(big).throughputOverEcho, judged(small).throughputOverEcho);
    const cold = ratio(big.median.cold.throughputOverEcho, small.median.cold.throughputOverEcho);
    out['oneCohortOverCohortsOf10'] = { target: 'one cohort of 200 x 1000: throughput/echo >= 0.8x that of cohorts of 10 x 100', judgedOn: on(big), value, cold, met: value >= 0.8 };
  }
  return out;
}
