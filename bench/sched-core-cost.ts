import { defaultCoreConfig, type CoreInput, type Effect } from '../server/core/core-types.js';
import type { Registration } from '../server/core/records.js';
import { Scheduler } from '../server/core/scheduler.js';
import { schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';

/**
 * The core's cost per assignment without sockets or a store (`npm run bench:sched -- --core-cost`):
 * the real Scheduler driven by the closed loop of `npm run bench` (bench/load-generator.ts): every
 * peer says hello (targeted updates, one patchset per cohort, a flat schema of zero-duration steps),
 * finishes each step it is assigned at once, and waits when told to, until each is told `complete`.
 * Inputs are handled in arrival order (a FIFO: the hellos, then each report behind the ones before
 * it), the clock moving 1 ms per input; after each input the authority's `nextDeadlineMs()` is asked,
 * as the authority does after each flush. What is measured is the process's CPU time (user +
 * system, `process.cpuUsage`, GC threads included) over the loop, so a busy machine's preemption
 * does not count; the driver's own work in the loop (a queue push per assignment) is in it, the
 * inputs' making (hellos, the schema digest) is not. `hello` is the CPU time until the first report
 * comes up (the hellos are all ahead of it), `finished` the rest.
 */

export interface CoreCostShape {
  readonly name: string;
  readonly peers: number;
  readonly cohortSize: number;
  readonly steps: number;
}

/** The two v1 shapes of issue #17, as the core sees them. */
export const coreCostShapes: readonly CoreCostShape[] = Object.freeze([
  { name: '1000 peers, cohorts of 10 x 100 steps', peers: 1000, cohortSize: 10, steps: 100 },
  { name: '200 peers, one cohort of 1000 steps', peers: 200, cohortSize: 200, steps: 1000 },
]);

export interface CoreCostRun {
  readonly assignments: number;
  readonly inputs: number;
  readonly completes: number;
  /** CPU time of the closed loop (handle + nextDeadlineMs for every input), ms. */
  readonly coreMs: number;
  readonly coreUsPerAssignment: number;
  /** The same split by input kind, µs per assignment (hello, finished). */
  readonly helloUsPerAssignment: number;
  readonly finishedUsPerAssignment: number;
}

/** A flat schema of `steps` independent steps, as the load generator sends it. */
function benchSchema(steps: number): SchemaDef {
  return { id: 'bench', universe: '//bench/...', steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i + 1}`, target: `//bench/s${i + 1}/...`, needs: [] })) };
}

function registration(cohort: number): Registration {
  return {
    repo: 'https://example.com/bench/mono.git',
    baseRef: 'main',
    baseSha: null,
    patchsets: [`refs/changes/${cohort}/1`],
    changeRef: null,
    pipelineName: 'check',
    pipelineType: 'independent',
    isolated: false,
    cacheId: 'bench-cache',
  };
}

/** Assignments one measured run covers at least: a small shape is run again on a fresh scheduler until it reaches this (so both shapes time about as much work). */
const assignmentsPerRun = 10_000;

/** One measured run of a shape: enough closed loops (each on a fresh scheduler) for {@link assignmentsPerRun}, summed. */
export function runCoreCost(shape: CoreCostShape): CoreCostRun {
  const loops = Math.max(1, Math.ceil(assignmentsPerRun / (Math.ceil(shape.peers / shape.cohortSize) * shape.steps)));
  const parts = Array.from({ length: loops }, () => closedLoop(shape));
  const sum = (f: (r: LoopFigures) => number): number => parts.reduce((a, r) => a + f(r), 0);
  const assignments = sum((r) => r.assignments);
  const per = (ms: number): number => Math.round((ms * 1000 * 10) / assignments) / 10;
  const coreMs = sum((r) => r.coreMs);
  const helloMs = sum((r) => r.helloMs);
  return {
    assignments,
    inputs: sum((r) => r.inputs),
    completes: sum((r) => r.completes),
    coreMs: Math.round(coreMs * 10) / 10,
    coreUsPerAssignment: per(coreMs),
    helloUsPerAssignment: per(helloMs),
    finishedUsPerAssignment: per(coreMs - helloMs),
  };
}

export interface LoopFigures {
  readonly assignments: number;
  readonly inputs: number;
  readonly completes: number;
  readonly coreMs: number;
  readonly helloMs: number;
}

/** One closed loop of a shape on a fresh scheduler; throws when it does not end with every step assigned once and every peer told `complete`. */
export function closedLoop(shape: CoreCostShape): LoopFigures {
  let cohortN = 0;
  let leaseN = 0;
  const scheduler = new Scheduler(defaultCoreConfig, { cohortId: () => `c${++cohortN}`, leaseId: () => `l${++leaseN}` });
  const schema = benchSchema(shape.steps);
  const digest = schemaDigest(schema);
  const queue: CoreInput[] = [];
  for (let i = 0; i < shape.peers; i++) {
    const peerId = `bench-${i}`;
    queue.push({
      kind: 'hello',
      connId: i + 1,
      peerId,
      registration: registration(Math.floor(i / shape.cohortSize)),
      schema,
      digest,
      presentedToken: null,
      freshToken: { token: `t-${peerId}`, hash: `h-${peerId}` },
      currentStep: null,
      resumable: true,
      targetedUpdates: true,
    });
  }
  let now = 1_000_000;
  let assignments = 0;
  let completes = 0;
  const onEffect = (e: Effect): void => {
    if (e.kind === 'granted') {
      assignments++;
      queue.push({ kind: 'finished', connId: e.connId, leaseId: e.leaseId, stepId: e.stepId, ok: true, exitCode: 0, durationMs: 0, logTail: null });
    } else if (e.kind === 'complete') {
      completes++;
    } else if (e.kind === 'refuse') {
      throw new Error(`core-cost ${shape.name}: connection ${e.connId} refused: ${JSON.stringify(e.refusal)}`);
    }
  };
  // CPU time is read at the start, when the first report comes up (every hello is ahead of it in the FIFO) and at the end.
  const cpuMs = (): number => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const startMs = cpuMs();
  let hellosDoneMs: number | null = null;
  for (let head = 0; head < queue.length; head++) {
    const input = queue[head]!;
    if (hellosDoneMs === null && input.kind !== 'hello') hellosDoneMs = cpuMs();
    now += 1;
    const out = scheduler.handle(input, now);
    scheduler.nextDeadlineMs();
    if (out.fault !== null) throw out.fault;
    for (const e of out.effects) onEffect(e);
  }
  const endMs = cpuMs();
  const coreMs = endMs - startMs;
  const helloMs = (hellosDoneMs ?? endMs) - startMs;
  const cohorts = Math.ceil(shape.peers / shape.cohortSize);
  if (assignments !== cohorts * shape.steps || completes !== shape.peers) {
    throw new Error(`core-cost ${shape.name}: expected ${cohorts * shape.steps} assignments and ${shape.peers} completes, got ${assignments} and ${completes}`);
  }
  return { assignments, inputs: queue.length, completes, coreMs, helloMs };
}

export interface CoreCostResult {
  readonly shape: CoreCostShape;
  readonly runs: readonly CoreCostRun[];
  readonly medianUsPerAssignment: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * `repeat` rounds over the shapes, alternating (a warm-up round first, not counted, so the JIT has
 * seen both shapes), and each shape's median µs per assignment.
 */
export function measureCoreCost(shapes: readonly CoreCostShape[], repeat: number, log: (line: string) => void): CoreCostResult[] {
  for (const shape of shapes) runCoreCost(shape);
  const runs = shapes.map(() => [] as CoreCostRun[]);
  for (let i = 0; i < repeat; i++) {
    shapes.forEach((shape, s) => {
      const run = runCoreCost(shape);
      runs[s]!.push(run);
      log(`${shape.name} [run ${i + 1}/${repeat}]: ${run.coreUsPerAssignment} µs per assignment in the core (hello ${run.helloUsPerAssignment}, finished ${run.finishedUsPerAssignment}), ${run.assignments} assignments, ${run.inputs} inputs`);
    });
  }
  return shapes.map((shape, s) => ({ shape, runs: runs[s]!, medianUsPerAssignment: Math.round(median(runs[s]!.map((r) => r.coreUsPerAssignment)) * 10) / 10 }));
}
