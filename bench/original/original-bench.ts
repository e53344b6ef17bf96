import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { authorityPass, externalTaskDirectorPhase, GeneratorPool, startAuthority, stopAuthority, type LoadFigures, type PhaseOptions } from '../bench-phases.js';
import { loadClients, type LoadClient } from '../load-ws-client.js';
import { fdLimits, killAllChildren } from '../bench-processes.js';
import { missingForOriginal, startOriginal } from './original-servers.js';

/**
 * `npm run bench:original -- --original DIR`: taskshard's Task Director path
 * side by side with the original Python implementation, driven by the same
 * load client (bench/load-generator.ts in task-director mode: INIT, then
 * TASK_COMPLETE for every BUILD_INSTRUCTION until SCHEMA_COMPLETE), runs
 * alternating taskshard, original, taskshard, original, ... per client count.
 * Both are long-lived servers: per client count, one taskshard authority and
 * one set of the original's processes (daphne, worker, redis) serve every
 * round, after warm-up rounds against each until each served `--warm-up-tasks`
 * (10,000; reported as `warmUp`, the first of them as the cold figures, none in
 * the medians): taskshard's V8 has compiled and optimised its paths, Python has
 * imported and run its code. Each round has its own client ids and patchsets,
 * so no round joins an earlier one's group. The load client's processes are
 * kept too (one set per client count, serving both implementations' rounds),
 * so its code is as warm as the servers' (bench/load-ws-client.ts says why
 * the client's own CPU matters on 2 cores).
 * Prints a table and, last, one JSON line. Without the checkout or the
 * packages it says what is missing and exits 0.
 */
const usage = `usage: npm run bench:original -- --original DIR [--peers 10,50] [--tasks N] [--rounds R] [--warm-up-tasks W] [--python PATH] [--redis-server PATH] [--load-client lean|ws] [--max-sec T] [--no-build]
  DIR is a checkout of https://github.com/alexander-scott/task-sharding; needs Debian's
  python3-django python3-django-channels python3-channels-redis python3-daphne redis-server.
  Per client count: one taskshard authority and one original (daphne + worker + redis), both
  long-lived, serve warm-up rounds (alternating, new clients each round) until each served W
  tasks (default 10000; the first is reported as cold), then R measured rounds, alternating.
  The same load-client processes drive both (--load-client: bench/load-ws-client.ts, default lean).`;

class UsageError extends Error {}

interface Flags {
  readonly original: string | null;
  readonly peers: readonly number[];
  readonly tasks: number;
  readonly rounds: number;
  /** Tasks each implementation serves in warm-up rounds before the measured rounds. */
  readonly warmUpTasks: number;
  readonly python: string;
  readonly redisServer: string;
  readonly maxSec: number;
  readonly build: boolean;
  readonly loadClient: LoadClient;
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
      'warm-up-tasks': { type: 'string' },
      python: { type: 'string' },
      'redis-server': { type: 'string' },
      'max-sec': { type: 'string' },
      'load-client': { type: 'string' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) throw new UsageError('');
  const loadClient = values['load-client'] ?? 'lean';
  if (!(loadClients as readonly string[]).includes(loadClient)) throw new UsageError(`--load-client: expected ${loadClients.join(' or ')}, got "${loadClient}"`);
  return {
    original: values.original === undefined ? null : resolve(values.original),
    peers: (values.peers ?? '10,50').split(',').map((p) => intValue(p.trim(), 'peers', 1, 1000)),
    tasks: values.tasks === undefined ? 1000 : intValue(values.tasks, 'tasks', 1, 5000),
    rounds: values.rounds === undefined ? 3 : intValue(values.rounds, 'rounds', 1, 9),
    warmUpTasks: values['warm-up-tasks'] === undefined ? 10_000 : intValue(values['warm-up-tasks'], 'warm-up-tasks', 1, 1_000_000),
    python: values.python ?? '/usr/bin/python3',
    redisServer: values['redis-server'] ?? 'redis-server',
    maxSec: values['max-sec'] === undefined ? 1800 : intValue(values['max-sec'], 'max-sec', 10, 7200),
    build: !values['no-build'],
    loadClient: loadClient as LoadClient,
  };
}

interface Side {
  readonly assignmentsPerSec: number;
  readonly cpuUsPerAssignment: number;
  /** The load client's CPU per task (the same client for both): on 2 cores it takes CPU from the server. */
  readonly clientCpuUsPerAssignment: number;
  readonly latencyP99Ms: number;
}

const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : round((s[m - 1]! + s[m]!) / 2, 2);
};

function side(load: LoadFigures): Side {
  const perTask = (sec: number): number => round((sec * 1e6) / Math.max(1, load.rounds), 1);
  return { assignmentsPerSec: load.perSec, cpuUsPerAssignment: perTask(load.serverCpuSec), clientCpuUsPerAssignment: perTask(load.clientCpuSec), latencyP99Ms: load.latencyMs.p99 };
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
  const allProblems: string[] = [];
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
      loadClient: flags.loadClient,
      profileDir: null,
      log,
    };
    const problems: string[] = [];
    const checked = (load: LoadFigures, what: string): Side => {
      if (load.rounds !== flags.tasks) problems.push(`${peers} clients, ${what}: expected ${flags.tasks} tasks, counted ${load.rounds}`);
      if (load.completes !== peers) problems.push(`${peers} clients, ${what}: expected ${peers} SCHEMA_COMPLETE, counted ${load.completes}`);
      if (Object.keys(load.errors).length > 0) problems.push(`${peers} clients, ${what}: error frames ${JSON.stringify(load.errors)}`);
      return side(load);
    };
    // Both long-lived for every round of this client count, as each is deployed.
    const authority = await startAuthority(options, options.deadlineMs, 600);
    let servers;
    try {
      servers = await startOriginal(flags.original!, flags.python, flags.redisServer);
    } catch (err) {
      await stopAuthority(authority);
      throw err;
    }
    const taskshard: Side[] = [];
    const original: Side[] = [];
    const warmUp: { taskshard: Side[]; original: Side[] } = { taskshard: [], original: [] };
    const warmUpRounds = Math.ceil(flags.warmUpTasks / flags.tasks);
    const pool = new GeneratorPool();
    try {
      // Rounds 0 .. warmUpRounds - 1 (passes of their own): measured, reported, kept out of the medians.
      for (let w = 0; w < warmUpRounds; w++) {
        const wt = checked((await authorityPass(options, authority, w, pool)).load, `taskshard warm-up round ${w + 1}`);
        const wo = checked(await externalTaskDirectorPhase(options, servers.origin, servers.pids, w, pool), `original warm-up round ${w + 1}`);
        log(
          `${peers} clients, warm-up round ${w + 1}/${warmUpRounds}: taskshard ${wt.assignmentsPerSec} tasks/s, ${wt.cpuUsPerAssignment} µs CPU per task (load client ${wt.clientCpuUsPerAssignment} µs); ` +
            `original ${wo.assignmentsPerSec} tasks/s, ${wo.cpuUsPerAssignment} µs (daphne + worker + redis; load client ${wo.clientCpuUsPerAssignment} µs)`,
        );
        warmUp.taskshard.push(wt);
        warmUp.original.push(wo);
      }
      for (let round_ = 1; round_ <= flags.rounds; round_++) {
        const pass = warmUpRounds + round_ - 1;
        const t = checked((await authorityPass(options, authority, pass, pool)).load, `taskshard round ${round_}`);
        log(`${peers} clients, round ${round_}: taskshard ${t.assignmentsPerSec} tasks/s, ${t.cpuUsPerAssignment} µs CPU per task (load client ${t.clientCpuUsPerAssignment} µs)`);
        taskshard.push(t);
        const o = checked(await externalTaskDirectorPhase(options, servers.origin, servers.pids, pass, pool), `original round ${round_}`);
        log(`${peers} clients, round ${round_}: original ${o.assignmentsPerSec} tasks/s, ${o.cpuUsPerAssignment} µs CPU per task (daphne + worker + redis; load client ${o.clientCpuUsPerAssignment} µs)`);
        original.push(o);
      }
    } finally {
      pool.end();
      await servers.stop();
      await stopAuthority(authority);
    }
    const ratioOf = (t: Side, o: Side) => ({
      throughput: round(t.assignmentsPerSec / Math.max(1, o.assignmentsPerSec), 2),
      cpuPerAssignment: round(o.cpuUsPerAssignment / Math.max(0.1, t.cpuUsPerAssignment), 2),
    });
    const ratios = taskshard.map((t, i) => ratioOf(t, original[i]!));
    allProblems.push(...problems);
    rows.push({
      peers,
      tasks: flags.tasks,
      warmUp: { rounds: warmUpRounds, tasks: warmUpRounds * flags.tasks, ...warmUp, coldRatios: ratioOf(warmUp.taskshard[0]!, warmUp.original[0]!) },
      taskshard,
      original,
      median: {
        taskshardAssignmentsPerSec: median(taskshard.map((s) => s.assignmentsPerSec)),
        originalAssignmentsPerSec: median(original.map((s) => s.assignmentsPerSec)),
        taskshardCpuUsPerAssignment: median(taskshard.map((s) => s.cpuUsPerAssignment)),
        originalCpuUsPerAssignment: median(original.map((s) => s.cpuUsPerAssignment)),
        taskshardClientCpuUsPerAssignment: median(taskshard.map((s) => s.clientCpuUsPerAssignment)),
        originalClientCpuUsPerAssignment: median(original.map((s) => s.clientCpuUsPerAssignment)),
        throughputTaskshardOverOriginal: median(ratios.map((r) => r.throughput)),
        cpuPerAssignmentOriginalOverTaskshard: median(ratios.map((r) => r.cpuPerAssignment)),
      },
      ratios,
    });
  }
  const date = new Date().toISOString().slice(0, 10);
  process.stdout.write(
    `taskshard (Task Director path) vs the original (daphne + Channels worker + redis), ${flags.tasks} tasks, same load client, long-lived servers: warm-up rounds until each served ${flags.warmUpTasks} tasks, then ${flags.rounds} alternating rounds, median; ${date}, ${cpus().length} CPUs, load ${loadBefore.toFixed(2)}\n\n`,
  );
  process.stdout.write(
    '| clients | taskshard tasks/s | original tasks/s | taskshard ÷ original | taskshard CPU µs/task | original CPU µs/task | original ÷ taskshard CPU | load client CPU µs/task (taskshard, original) | cold (first warm-up round): rate ratio, CPU ratio |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n',
  );
  for (const r of rows) {
    const m = r.median;
    const w = r.warmUp.coldRatios;
    process.stdout.write(`| ${r.peers} | ${m.taskshardAssignmentsPerSec} | ${m.originalAssignmentsPerSec} | **${m.throughputTaskshardOverOriginal}×** | ${m.taskshardCpuUsPerAssignment} | ${m.originalCpuUsPerAssignment} | **${m.cpuPerAssignmentOriginalOverTaskshard}×** | ${m.taskshardClientCpuUsPerAssignment}, ${m.originalClientCpuUsPerAssignment} | ${w.throughput}×, ${w.cpuPerAssignment}× |\n`);
  }
  const result = {
    bench: 'original',
    date,
    node: process.version,
    cpus: cpus().length,
    loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
    loadClient: flags.loadClient,
    method: `per client count: one taskshard authority and one original (daphne + worker + redis), both long-lived, and one set of load-client processes driving both; warm-up rounds alternating until each served ${flags.warmUpTasks} tasks (warmUp: measured, the first is the cold figure, none in the medians), then the measured rounds alternating taskshard, original; each round its own client ids and patchsets`,
    rounds: flags.rounds,
    rows,
    problems: allProblems,
    wallSec: round((performance.now() - started) / 1000, 1),
  };
  process.stdout.write(`\n${JSON.stringify(result)}\n`);
  return allProblems.length > 0 ? 1 : 0;
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
