import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { unitLegend } from '../server/sim/sim-format.js';
import { simulate } from '../server/sim/simulate.js';
import type { SimReport } from '../server/sim/sim-types.js';
import { reportJson, reportTable } from './sched-report.js';
import { loadWorkloadFile } from './workload-file.js';

/**
 * `npm run bench:sched [-- --workload FILE ...]`: runs the scheduling simulator
 * (the real core on a virtual clock, plus the four baselines) over every
 * workload in bench/workloads/ (or the files given), prints a table, then one
 * JSON line with every figure. Exit 2 on a bad workload file.
 */
const usage = 'usage: npm run bench:sched [-- --workload FILE ...]';

function main(): number {
  let args;
  try {
    args = parseArgs({ options: { workload: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } }, allowPositionals: false });
  } catch (err) {
    process.stderr.write(`bench:sched: ${(err as Error).message}\n${usage}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
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
