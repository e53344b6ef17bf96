import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { unitLegend } from '../server/sim/sim-format.js';
import { simulate } from '../server/sim/simulate.js';
import type { SimReport } from '../server/sim/sim-types.js';
import { closedLoop, coreCostShapes, measureCoreCost } from './sched-core-cost.js';
import { reportJson, reportTable } from './sched-report.js';
import { loadWorkloadFile } from './workload-file.js';

/**
 * `npm run bench:sched [-- --workload FILE ...]`: runs the scheduling simulator
 * (the real core on a virtual clock, plus the four baselines) over every
 * workload in bench/workloads/ (or the files given), prints a table, then one
 * JSON line with every figure. Exit 2 on a bad workload file.
 *
 * `npm run bench:sched -- --core-cost [--repeat N]`: instead, the core's own cost per assignment
 * (no sockets, no store) in the two v1 shapes of `npm run bench` (sched-core-cost.ts), warm (after
 * a warm-up round in this process) and cold (the first closed loop in a fresh process, as an
 * authority's first pass is; N processes per shape), and the one-cohort figure over the
 * cohorts-of-10 one, both ways.
 */
const usage = 'usage: npm run bench:sched [-- --workload FILE ...] | [-- --core-cost [--repeat N]]';

function coreCost(repeatText: string | undefined): number {
  const repeat = repeatText === undefined ? 3 : Number(repeatText);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) {
    process.stderr.write(`bench:sched: --repeat must be an integer from 1 to 50, got "${repeatText}"\n${usage}\n`);
    return 2;
  }
  process.stdout.write('The core per assignment, no sockets or store (CPU time of handle + nextDeadlineMs, GC included), median of each shape\n');
  const results = measureCoreCost(coreCostShapes, repeat, (line) => process.stdout.write(`${line}\n`));
  // Cold: the first closed loop in a fresh process (as an authority's first pass is), `repeat` processes per shape, alternately.
  const cold = coreCostShapes.map(() => [] as number[]);
  for (let i = 0; i < repeat; i++) {
    coreCostShapes.forEach((shape, s) => {
      const us = coldRun(s);
      cold[s]!.push(us);
      process.stdout.write(`${shape.name} [cold ${i + 1}/${repeat}]: ${us} µs per assignment in the core, first loop in a fresh process\n`);
    });
  }
  const coldMedians = cold.map((runs) => Math.round(median(runs) * 10) / 10);
  const [small, big] = results;
  const ratio = Math.round((big!.medianUsPerAssignment / small!.medianUsPerAssignment) * 100) / 100;
  const coldRatio = Math.round((coldMedians[1]! / coldMedians[0]!) * 100) / 100;
  results.forEach((r, s) => process.stdout.write(`${r.shape.name}: ${r.medianUsPerAssignment} µs per assignment warm, ${coldMedians[s]} cold\n`));
  process.stdout.write(`one cohort of 200 x 1000 over cohorts of 10 x 100: ${ratio}x the core's work per assignment (cold: ${coldRatio}x)\n`);
  const json = {
    bench: 'sched-core-cost',
    repeat,
    shapes: results.map((r, s) => ({ ...r.shape, usPerAssignment: r.medianUsPerAssignment, coldUsPerAssignment: coldMedians[s], runs: r.runs, coldRuns: cold[s] })),
    oneCohortOverCohortsOf10: ratio,
    coldOneCohortOverCohortsOf10: coldRatio,
  };
  process.stdout.write(`${JSON.stringify(json)}\n`);
  return 0;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One cold figure: this script again in a fresh Node process (same loader flags), one closed loop of shape `s`. */
function coldRun(s: number): number {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), coldFlag, String(s)], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`bench:sched: the cold run of shape ${s} failed (exit ${child.status}): ${child.stderr}`);
  const us = Number(child.stdout.trim().split('\n').at(-1));
  if (!(us > 0)) throw new Error(`bench:sched: the cold run of shape ${s} printed no figure: ${child.stdout}`);
  return us;
}

/** The child side of {@link coldRun}: the first closed loop of one shape in this process, µs per assignment. */
const coldFlag = '--core-cost-cold-child';
function coldChild(shapeText: string | undefined): number {
  const shape = coreCostShapes[Number(shapeText)];
  if (shape === undefined) {
    process.stderr.write(`bench:sched: ${coldFlag} takes a shape index, got "${shapeText}"\n`);
    return 2;
  }
  const r = closedLoop(shape);
  process.stdout.write(`${Math.round((r.coreMs * 1000 * 10) / r.assignments) / 10}\n`);
  return 0;
}

function main(): number {
  let args;
  try {
    args = parseArgs({
      options: {
        workload: { type: 'string', multiple: true },
        'core-cost': { type: 'boolean' },
        'core-cost-cold-child': { type: 'string' },
        repeat: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    });
  } catch (err) {
    process.stderr.write(`bench:sched: ${(err as Error).message}\n${usage}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (args.values['core-cost-cold-child'] !== undefined) return coldChild(args.values['core-cost-cold-child']);
  if (args.values['core-cost']) return coreCost(args.values.repeat);
  if (args.values.repeat !== undefined) {
    process.stderr.write(`bench:sched: --repeat goes with --core-cost\n${usage}\n`);
    return 2;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = join(here, 'workloads');
  const files =
    args.values.workload ??
    readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => join(dir, f));

  const reports: SimReport[] = [];
  let bad = 0;
  for (const file of files) {
    const loaded = loadWorkloadFile(file);
    if (!loaded.ok) {
      bad++;
      for (const line of loaded.lines) process.stderr.write(`${line}\n`);
      continue;
    }
    reports.push(simulate(loaded.workload));
  }
  if (bad > 0) {
    process.stderr.write(`${bad} of ${files.length} workload files invalid\n`);
    return 2;
  }
  process.stdout.write(`Scheduling simulator: the real core on a virtual clock vs four baselines, same durations and arrivals (${files.map((f) => relative(process.cwd(), f)).join(', ')})\n`);
  process.stdout.write(
    [
      ...unitLegend,
      'executed/unique: build time ÷ time to build each step once',
      'makespan/LB: per cohort, first arrival to last peer ready ÷ max(critical path, work ÷ peers with arrivals); ready: per peer, arrival to universe build',
      '(b)/(c): a shared remote cache the jobs race on: a step is a hit only if another job finished it before this one starts it',
    ].join('\n') + '\n\n',
  );
  process.stdout.write(`${reportTable(reports)}\n\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'sched', workloads: reports.map(reportJson) })}\n`);
  return 0;
}

process.exitCode = main();
