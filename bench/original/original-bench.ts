import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { authorityLoadPhase, externalTaskDirectorPhase, type LoadFigures, type PhaseOptions } from '../bench-phases.js';
import { fdLimits, killAllChildren } from '../bench-processes.js';
import { missingForOriginal, startOriginal } from './original-servers.js';

/**
 * `npm run bench:original -- --original DIR`: taskshard's Task Director path
 * side by side with the original Python implementation, driven by the same
 * load client (bench/load-generator.ts in task-director mode: INIT, then
 * TASK_COMPLETE for every BUILD_INSTRUCTION until SCHEMA_COMPLETE), runs
 * alternating taskshard, original, taskshard, original, ... per client count.
 * Prints a table and, last, one JSON line. Without the checkout or the
 * packages it says what is missing and exits 0.
 */
const usage = `usage: npm run bench:original -- --original DIR [--peers 10,50] [--tasks N] [--rounds R] [--python PATH] [--redis-server PATH] [--max-sec T] [--no-build]
  DIR is a checkout of https://github.com/alexander-scott/task-sharding; needs Debian's
  python3-django python3-django-channels python3-channels-redis python3-daphne redis-server`;

class UsageError extends Error {}

interface Flags {
  readonly original: string | null;
  readonly peers: readonly number[];
  readonly tasks: number;
  readonly rounds: number;
  readonly python: string;
  readonly redisServer: string;
  readonly maxSec: number;
  readonly build: boolean;
}

function intValue(value: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got "${value}"`);
  return Number(value);
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      original: { type: 'string' },
      peers: { type: 'string' },
      tasks: { type: 'string' },
      rounds: { type: 'string' },
      python: { type: 'string' },
      'redis-server': { type: 'string' },
      'max-sec': { type: 'string' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) throw new UsageError('');
  return {
    original: values.original === undefined ? null : resolve(values.original),
    peers: (values.peers ?? '10,50').split(',').map((p) => intValue(p.trim(), 'peers', 1, 1000)),
    tasks: values.tasks === undefined ? 1000 : intValue(values.tasks, 'tasks', 1, 5000),
    rounds: values.rounds === undefined ? 3 : intValue(values.rounds, 'rounds', 1, 9),
    python: values.python ?? '/usr/bin/python3',
    redisServer: values['redis-server'] ?? 'redis-server',
    maxSec: values['max-sec'] === undefined ? 1800 : intValue(values['max-sec'], 'max-sec', 10, 7200),
    build: !values['no-build'],
  };
}

interface Side {
  readonly assignmentsPerSec: number;
  readonly cpuUsPerAssignment: number;
  readonly latencyP99Ms: number;
}

const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function side(load: LoadFigures): Side {
  return { assignmentsPerSec: load.perSec, cpuUsPerAssignment: round((load.serverCpuSec * 1e6) / Math.max(1, load.rounds), 1), latencyP99Ms: load.latencyMs.p99 };
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    const message = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (err as Error).message : String(err);
    process.stderr.write(`${message ? `bench:original: ${message}\n` : ''}${usage}\n`);
    return message ? 2 : 0;
  }
  const missing = missingForOriginal(flags.original, flags.python, flags.redisServer);
  if (missing.length > 0) {
    process.stdout.write(`bench:original: cannot run the original here, so nothing was measured:\n${missing.map((m) => `  - ${m}`).join('\n')}\n`);
    return 0;
  }
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
  const log = (line: string): void => void process.stderr.write(`bench:original: ${line}\n`);
  const started = performance.now();
  if (flags.build) {
    log('building dist/ (tsc -p tsconfig.build.json; skip with --no-build)');
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  for (const f of ['dist/cli/main.js', 'dist/bench/load-generator.js']) {
    if (!existsSync(join(repoRoot, f))) {
      process.stderr.write(`bench:original: ${f} is missing; run npm run build\n`);
      return 1;
    }
  }
  const limits = fdLimits();
  const nofile = Math.min(limits.hard, Math.max(limits.soft, Math.max(...flags.peers) + 256));
  const loadBefore = loadavg()[0]!;
  const rows = [];
  for (const peers of flags.peers) {
    const options: PhaseOptions = {
      repoRoot,
      peers,
      generators: 1,
      cohortSize: peers,
      stepsPerCohort: flags.tasks,
      windowMs: 1000,
      serverNofile: nofile,
      generatorNofile: nofile,
      deadlineMs: started + flags.maxSec * 1000,
      sync: 'normal',
      protocol: 'task-director',
      profileDir: null,
      log,
    };
    const taskshard: Side[] = [];
    const original: Side[] = [];
    for (let round_ = 1; round_ <= flags.rounds; round_++) {
      const t = side((await authorityLoadPhase(options)).load);
      log(`${peers} clients, round ${round_}: taskshard ${t.assignmentsPerSec} tasks/s, ${t.cpuUsPerAssignment} µs CPU per task`);
      taskshard.push(t);
      const servers = await startOriginal(flags.original!, flags.python, flags.redisServer);
      let o: Side;
      try {
        o = side(await externalTaskDirectorPhase(options, servers.origin, servers.pids));
      } finally {
        await servers.stop();
      }
      log(`${peers} clients, round ${round_}: original ${o.assignmentsPerSec} tasks/s, ${o.cpuUsPerAssignment} µs CPU per task (daphne + worker + redis)`);
      original.push(o);
    }
    const ratios = taskshard.map((t, i) => ({
      throughput: round(t.assignmentsPerSec / Math.max(1, original[i]!.assignmentsPerSec), 2),
      cpuPerAssignment: round(original[i]!.cpuUsPerAssignment / Math.max(0.1, t.cpuUsPerAssignment), 2),
    }));
    rows.push({
      peers,
      tasks: flags.tasks,
      taskshard,
      original,
      median: {
        taskshardAssignmentsPerSec: median(taskshard.map((s) => s.assignmentsPerSec)),
        originalAssignmentsPerSec: median(original.map((s) => s.assignmentsPerSec)),
        taskshardCpuUsPerAssignment: median(taskshard.map((s) => s.cpuUsPerAssignment)),
        originalCpuUsPerAssignment: median(original.map((s) => s.cpuUsPerAssignment)),
        throughputTaskshardOverOriginal: median(ratios.map((r) => r.throughput)),
        cpuPerAssignmentOriginalOverTaskshard: median(ratios.map((r) => r.cpuPerAssignment)),
      },
      ratios,
    });
  }
  const date = new Date().toISOString().slice(0, 10);
  process.stdout.write(`taskshard (Task Director path) vs the original (daphne + Channels worker + redis), ${flags.tasks} tasks, same load client, ${flags.rounds} alternating rounds, median; ${date}, ${cpus().length} CPUs, load ${loadBefore.toFixed(2)}\n\n`);
  process.stdout.write('| clients | taskshard tasks/s | original tasks/s | taskshard ÷ original | taskshard CPU µs/task | original CPU µs/task | original ÷ taskshard CPU |\n|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    const m = r.median;
    process.stdout.write(`| ${r.peers} | ${m.taskshardAssignmentsPerSec} | ${m.originalAssignmentsPerSec} | **${m.throughputTaskshardOverOriginal}×** | ${m.taskshardCpuUsPerAssignment} | ${m.originalCpuUsPerAssignment} | **${m.cpuPerAssignmentOriginalOverTaskshard}×** |\n`);
  }
  const result = { bench: 'original', date, node: process.version, cpus: cpus().length, loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) }, rounds: flags.rounds, rows, wallSec: round((performance.now() - started) / 1000, 1) };
  process.stdout.write(`\n${JSON.stringify(result)}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    killAllChildren();
    process.stderr.write(`bench:original: ${process.env.BENCH_DEBUG ? (err as Error).stack : (err as Error).message}\n`);
    process.exitCode = 1;
  },
);
