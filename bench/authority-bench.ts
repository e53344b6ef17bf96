import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { idlePhase } from './bench-idle.js';
import { abuseAttacks, authorityLoadPhase, type AbuseAttack, type BenchProtocol, type PhaseOptions } from './bench-phases.js';
import { ephemeralPorts, fdLimits, killAllChildren } from './bench-processes.js';
import { failoverPhase, scratchDatabase } from './failover-phase.js';
import { loadTargets, runShape, standardShapes, type LoadShape } from './load-shapes.js';
import { loadClients, type LoadClient } from './load-ws-client.js';

/**
 * `npm run bench [-- flags]`: the authority under load, on loopback only,
 * bounded in peers, steps and time. Prints progress on stderr and ONE JSON
 * line of results on stdout.
 *
 * Default: the three shapes of bench/load-shapes.ts, each `--repeat` times (3):
 * a bare `ws` echo server with N closed-loop clients (the same-run baseline),
 * then the real authority (dist/cli/main.js, SQLite file in a temp dir) with N
 * peers in cohorts finishing zero-duration steps, again and again against the
 * same process with new peers and cohorts: a cold pass (the fresh process, V8
 * compiling and optimising as it goes), unmeasured warm-up passes until
 * `--warm-up-assignments` (10,000) were served, and a warm pass (what a
 * long-running authority spends; `--cold-only` skips all but the cold pass);
 * CPU, frames, rows and latency per assignment of the cold and warm passes, as
 * ratios to the echo, median over the runs.
 * Any of --peers, --cohort-size, --steps, --protocol: that one shape instead.
 * `--idle M`: M idle connections to each, server RSS per connection right after they are up and
 * after `--idle-hold-sec S` (default 150) of idling, when V8 has collected the join burst's garbage.
 * Load generators are separate processes; see bench/load-generator.ts.
 */
const usage = `usage: npm run bench -- [--repeat R] [--peers N] [--cohort-size C] [--steps S] [--protocol v1|task-director] [--warm-up-assignments A | --cold-only] [--generators G] [--window-sec W] [--sync normal|full] [--load-client lean|ws] [--max-sec T] [--profile DIR] [--no-build]
         (per run: the echo, then one authority process serving the shape again and again, new peers and
          cohorts each time: the cold pass on the fresh process (measured), unmeasured warm-up passes until
          A assignments (default 10000) were served or 20 passes ran, then the warm pass (measured); targets judged warm;
          --cold-only: the cold pass alone; --load-client: the load generators' WebSocket client,
          bench/load-ws-client.ts, the lean one by default, the same for the echo and the authority)
       npm run bench -- --idle M [--idle-hold-sec S] [--generators G] [--max-sec T] [--no-build]
       npm run bench -- --abuse K [--attack bad-frames|expensive|idle|all] [--peers N] ...
         (the authority clean, then once per attack with K attacking connections; default: all three)
       npm run bench -- --store postgres://USER@HOST/DB [--kills K] [--leader-ttl S] [--leader-renew S] [--peers N] ...
         (the load run on SQLite, then on PostgreSQL, in scratch databases; then K failovers: kill -9 to first grant)
       npm run bench -- --day [N] [--concurrency C] [--retention-sec S] [--history-sec S] [--history-fill H] [--no-build]
         (a day in service: N cohorts, default 20,000, through one authority; see bench/day-bench.ts)`;

interface Flags {
  peers: number;
  idle: number | null;
  /** `--idle`: seconds both servers hold their idle connections before memory is read again. */
  idleHoldSec: number;
  abuse: number | null;
  attacks: readonly AbuseAttack[];
  /** The shapes of a load run: the standard three, or the one the shape flags describe. */
  shapes: readonly LoadShape[];
  repeat: number;
  /** Assignments an authority process serves before its warm pass (the cold pass included); null: `--cold-only`, no warm pass. */
  warmUpAssignments: number | null;
  cohortSize: number;
  steps: number;
  generators: number;
  windowSec: number;
  sync: 'normal' | 'full';
  maxSec: number;
  build: boolean;
  profileDir: string | null;
  loadClient: LoadClient;
  store: string | null;
  kills: number;
  leaderTtlSec: number;
  leaderRenewSec: number;
}

class UsageError extends Error {}

function intFlag(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got "${value}"`);
  return Number(value);
}

function attackFlag(value: string | undefined): readonly AbuseAttack[] {
  if (value === undefined || value === 'all') return abuseAttacks;
  if (!(abuseAttacks as readonly string[]).includes(value)) throw new UsageError(`--attack: expected ${abuseAttacks.join(', ')} or all, got "${value}"`);
  return [value as AbuseAttack];
}

function loadClientFlag(value: string | undefined): LoadClient {
  if (value === undefined) return 'lean';
  if (!(loadClients as readonly string[]).includes(value)) throw new UsageError(`--load-client: expected ${loadClients.join(' or ')}, got "${value}"`);
  return value as LoadClient;
}

function warmUpFlag(coldOnly: boolean, value: string | undefined): number | null {
  if (coldOnly && value !== undefined) throw new UsageError('--cold-only and --warm-up-assignments: choose one (--cold-only measures no warm pass)');
  return coldOnly ? null : intFlag(value, 'warm-up-assignments', 1, 1_000_000, 10_000);
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      peers: { type: 'string' },
      idle: { type: 'string' },
      'idle-hold-sec': { type: 'string' },
      abuse: { type: 'string' },
      attack: { type: 'string' },
      'cohort-size': { type: 'string' },
      steps: { type: 'string' },
      protocol: { type: 'string' },
      repeat: { type: 'string' },
      generators: { type: 'string' },
      'window-sec': { type: 'string' },
      sync: { type: 'string' },
      'max-sec': { type: 'string' },
      'no-build': { type: 'boolean' },
      'cold-only': { type: 'boolean' },
      'warm-up-assignments': { type: 'string' },
      profile: { type: 'string' },
      'load-client': { type: 'string' },
      store: { type: 'string' },
      kills: { type: 'string' },
      'leader-ttl': { type: 'string' },
      'leader-renew': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) throw new UsageError('');
  const idle = values.idle === undefined ? null : intFlag(values.idle, 'idle', 1, 50_000, 0);
  const peers = idle ?? intFlag(values.peers, 'peers', 1, 20_000, 1000);
  const sync = values.sync ?? 'normal';
  if (sync !== 'normal' && sync !== 'full') throw new UsageError(`--sync: expected normal or full, got "${sync}"`);
  const store = values.store ?? null;
  if (store !== null && !/^postgres(ql)?:\/\//.test(store)) throw new UsageError(`--store: expected a postgres:// URL, got "${store}"`);
  const protocol = values.protocol ?? 'v1';
  if (protocol !== 'v1' && protocol !== 'task-director') throw new UsageError(`--protocol: expected v1 or task-director, got "${protocol}"`);
  const td = protocol === 'task-director';
  // The Task Director default is its load client's shape: 200 clients in one group of 1,000 tasks.
  const shapePeers = intFlag(values.peers, 'peers', 1, 20_000, td ? 200 : 1000);
  const shapeCohort = intFlag(values['cohort-size'], 'cohort-size', 1, 1000, td ? 200 : 10);
  const shapeSteps = intFlag(values.steps, 'steps', 1, 2000, td ? 1000 : 100);
  const oneShape = [values.peers, values['cohort-size'], values.steps, values.protocol].some((v) => v !== undefined);
  const shapes: readonly LoadShape[] = oneShape ? [{ name: `${shapePeers} ${td ? 'Task Director clients' : 'peers'}, cohorts of ${shapeCohort} x ${shapeSteps} steps`, protocol: protocol as BenchProtocol, peers: shapePeers, cohortSize: shapeCohort, steps: shapeSteps }] : standardShapes;
  return {
    shapes,
    repeat: intFlag(values.repeat, 'repeat', 1, 9, 3),
    warmUpAssignments: warmUpFlag(values['cold-only'] === true, values['warm-up-assignments']),
    peers: idle === null && values.abuse === undefined && store === null ? Math.max(...shapes.map((x) => x.peers)) : peers,
    idle,
    idleHoldSec: intFlag(values['idle-hold-sec'], 'idle-hold-sec', 0, 1800, 150),
    abuse: values.abuse === undefined ? null : intFlag(values.abuse, 'abuse', 1, 5_000, 0),
    attacks: attackFlag(values.attack),
    cohortSize: intFlag(values['cohort-size'], 'cohort-size', 1, 1000, 10),
    steps: intFlag(values.steps, 'steps', 1, 2000, 100),
    generators: intFlag(values.generators, 'generators', 1, 64, idle === null ? 2 : Math.max(2, Math.ceil(peers / 2500))),
    windowSec: intFlag(values['window-sec'], 'window-sec', 1, 600, 5),
    sync,
    maxSec: intFlag(values['max-sec'], 'max-sec', 5, 7200, 1800),
    build: !values['no-build'],
    profileDir: values.profile === undefined ? null : resolve(values.profile),
    loadClient: loadClientFlag(values['load-client']),
    store,
    kills: intFlag(values.kills, 'kills', 0, 100, 10),
    leaderTtlSec: intFlag(values['leader-ttl'], 'leader-ttl', 1, 600, 10),
    leaderRenewSec: intFlag(values['leader-renew'], 'leader-renew', 1, 300, 2),
  };
}

/** Fails with what to do when the machine cannot hold the connections; returns the fd limits to ask for. */
function checkLimits(flags: Flags): { serverNofile: number; generatorNofile: number } {
  const limits = fdLimits();
  const perGenerator = Math.ceil(flags.peers / flags.generators);
  const serverNofile = flags.peers + (flags.abuse ?? 0) + 256;
  const generatorNofile = perGenerator + 256;
  const needed = Math.max(serverNofile, generatorNofile);
  if (needed > limits.hard) {
    throw new UsageError(
      `not enough file descriptors: ${flags.peers} connections need ulimit -n >= ${serverNofile} in the server process, but the hard limit is ${limits.hard}. ` +
        `Raise it (e.g. \`ulimit -Hn ${needed * 2}\` as root, or LimitNOFILE= for a service) or lower ${flags.idle === null ? '--peers' : '--idle'}.`,
    );
  }
  const ports = ephemeralPorts();
  if (perGenerator > ports - 1024) {
    throw new UsageError(`${perGenerator} connections per generator would exhaust the ${ports} ephemeral ports of one source address; use more --generators (each gets its own 127.0.0.x)`);
  }
  // Soft limits below `needed` are raised for the children (up to the hard limit) by spawnNode.
  return { serverNofile: Math.max(serverNofile, Math.min(limits.soft, limits.hard)), generatorNofile: Math.max(generatorNofile, Math.min(limits.soft, limits.hard)) };
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    const message = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (err as Error).message : String(err);
    process.stderr.write(`${message ? `bench: ${message}\n` : ''}${usage}\n`);
    return message ? 2 : 0;
  }
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
  let fds;
  try {
    fds = checkLimits(flags);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const started = performance.now();
  if (flags.build) {
    log('building dist/ (tsc -p tsconfig.build.json; skip with --no-build)');
    try {
      execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      process.stderr.write('bench: the build failed; fix it, or run with --no-build against the current dist/\n');
      return 1;
    }
  }
  for (const f of ['dist/cli/main.js', 'dist/bench/load-generator.js', 'dist/bench/echo-server.js', 'dist/bench/abuse-generator.js']) {
    if (!existsSync(join(repoRoot, f))) {
      process.stderr.write(`bench: ${f} is missing; run npm run build\n`);
      return 1;
    }
  }
  const options: PhaseOptions = {
    repoRoot,
    peers: flags.peers,
    generators: Math.min(flags.generators, flags.peers),
    cohortSize: flags.cohortSize,
    stepsPerCohort: flags.idle === null ? flags.steps : flags.cohortSize,
    windowMs: flags.windowSec * 1000,
    serverNofile: fds.serverNofile,
    generatorNofile: fds.generatorNofile,
    deadlineMs: started + flags.maxSec * 1000,
    sync: flags.sync,
    profileDir: flags.profileDir,
    loadClient: flags.loadClient,
    idleHoldMs: flags.idleHoldSec * 1000,
    log,
  };
  const machine = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loopbackOnly: true };
  /** Issue #17's memory target: RSS per idle connected peer, KiB (reported, as the load targets are). */
  const idleTargetKb = 10;
  const ratio = (a: number, b: number): number => (b === 0 ? 0 : Math.round((a / b) * 1000) / 1000);

  if (flags.idle !== null) {
    const idle = await idlePhase(options);
    // A peer refused or closed is not an idle peer: the figure would be per connection attempted, not per peer held.
    const problems = [
      ...Object.entries(idle.errors).map(([code, n]) => `${n} idle peers got an error frame ${code}`),
      ...(idle.unexpectedCloses > 0 ? [`${idle.unexpectedCloses} idle peers were closed by the authority`] : []),
    ];
    const result = {
      bench: 'authority',
      mode: 'idle',
      ...machine,
      peers: flags.peers,
      generators: options.generators,
      holdSec: idle.holdSec,
      baseline: {
        what: 'bare ws echo server, same number of idle connections',
        rssPerConnectionKb: idle.echoHeld.perConnectionKb,
        rssPerConnectionRightAfterConnectKb: idle.echo.perConnectionKb,
        baseRssMb: idle.echo.baseRssMb,
        loadedRssMb: idle.echo.loadedRssMb,
        heldRssMb: idle.echoHeld.loadedRssMb,
      },
      authority: {
        what: 'taskshard authority (dist, SQLite file), idle peers that said hello and hold a step or wait',
        rssPerPeerKb: idle.authorityHeld.perConnectionKb,
        rssPerPeerRightAfterJoinKb: idle.authority.perConnectionKb,
        baseRssMb: idle.authority.baseRssMb,
        loadedRssMb: idle.authority.loadedRssMb,
        heldRssMb: idle.authorityHeld.loadedRssMb,
        peakRssMb: idle.authorityHeld.peakRssMb,
        heapMb: idle.authorityHeapMb,
        peersHoldingAStep: idle.authorityAssigned,
      },
      ratio: {
        rssPerConnectionAuthorityOverWs: ratio(idle.authorityHeld.perConnectionKb, idle.echoHeld.perConnectionKb),
        rssPerConnectionRightAfterJoinAuthorityOverWs: ratio(idle.authority.perConnectionKb, idle.echo.perConnectionKb),
      },
      // KiB: /proc reports kB as 1024 bytes. The target is judged after the hold (an idle peer), not right after the join burst.
      target: { rssPerPeerKbAtMost: idleTargetKb, met: idle.authorityHeld.perConnectionKb <= idleTargetKb },
      problems,
      wallSec: Math.round((performance.now() - started) / 100) / 10,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return problems.length === 0 ? 0 : 1;
  }

  if (flags.abuse !== null) {
    log(`abuse: the authority clean, then with ${flags.abuse} attacking connections per attack (${flags.attacks.join(', ')})`);
    const clean = await authorityLoadPhase(options);
    log(`clean: ${clean.load.perSec} assignments/s, p50 ${clean.load.latencyMs.p50} ms, p99 ${clean.load.latencyMs.p99} ms`);
    const runs: { attack: AbuseAttack; run: Awaited<ReturnType<typeof authorityLoadPhase>> }[] = [];
    for (const attack of flags.attacks) {
      const run = await authorityLoadPhase(options, flags.abuse, attack);
      log(`${attack}: ${run.load.perSec} assignments/s, p50 ${run.load.latencyMs.p50} ms, p99 ${run.load.latencyMs.p99} ms`);
      runs.push({ attack, run });
    }
    const problems: string[] = [];
    for (const [name, run] of [['clean', clean] as const, ...runs.map((r) => [r.attack, r.run] as const)]) {
      if (run.load.completes !== flags.peers) problems.push(`${name}: expected ${flags.peers} complete frames, counted ${run.load.completes}`);
      if (Object.keys(run.load.errors).length > 0) problems.push(`${name}: well-behaved peers got error frames: ${JSON.stringify(run.load.errors)}`);
    }
    const figures = (run: typeof clean) => ({ assignmentsPerSec: run.load.perSec, latencyMs: run.load.latencyMs, completes: run.load.completes, errors: run.load.errors });
    const described: Record<AbuseAttack, string> = {
      'bad-frames': 'connections flood bad frames and reconnect when closed',
      expensive: 'connections send the costliest frames (a 4 MiB hello of 300k unknown keys, an INIT of 60k repo_state entries) and reconnect when closed',
      idle: 'connections never send anything and reconnect as soon as they are closed or refused',
    };
    const attacked = Object.fromEntries(
      runs.map(({ attack, run }) => [
        attack,
        {
          what: `the same run while ${flags.abuse} ${described[attack]}`,
          ...figures(run),
          abuse: run.abuse,
          ratio: {
            throughputOverClean: ratio(run.load.perSec, clean.load.perSec),
            latencyP50OverClean: ratio(run.load.latencyMs.p50, clean.load.latencyMs.p50),
            latencyP99OverClean: ratio(run.load.latencyMs.p99, clean.load.latencyMs.p99),
          },
        },
      ]),
    );
    const worstP99 = Math.max(...runs.map(({ run }) => ratio(run.load.latencyMs.p99, clean.load.latencyMs.p99)));
    const result = {
      bench: 'authority',
      mode: 'abuse',
      ...machine,
      peers: flags.peers,
      cohortSize: flags.cohortSize,
      stepsPerCohort: flags.steps,
      baseline: { what: 'the same authority run with no abusive connections', ...figures(clean) },
      attacks: attacked,
      // The target (issue #12): well-behaved peers' p99 within 2x of the clean run under every attack.
      target: { latencyP99OverCleanAtMost: 2, worstLatencyP99OverClean: worstP99, met: worstP99 <= 2 },
      problems,
      wallSec: Math.round((performance.now() - started) / 100) / 10,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return problems.length > 0 ? 1 : 0;
  }

  if (flags.store !== null) return storeBench(flags, options, machine, started);

  const loadBefore = loadavg();
  const shapes = [];
  for (const shape of flags.shapes) shapes.push(await runShape(options, shape, flags.repeat, flags.warmUpAssignments));
  const problems = shapes.flatMap((s) => s.problems.map((p) => `${s.shape}: ${p}`));
  const result = {
    bench: 'authority',
    mode: 'load',
    ...machine,
    loadAverage1m: { before: Math.round(loadBefore[0]! * 100) / 100, after: Math.round(loadavg()[0]! * 100) / 100 },
    repeat: flags.repeat,
    generators: options.generators,
    sync: flags.sync,
    loadClient: `${flags.loadClient} (bench/load-ws-client.ts): the same client drives the echo and the authority; generator processes are kept from pass to pass of an authority process, so the warm pass is driven by a warm client`,
    baseline: 'bare ws echo server (bench/echo-server.ts), same number of clients, closed loop (send a step.finished-sized frame, await the echo, repeat), measured just before each authority run',
    authority: 'taskshard authority (dist, SQLite WAL file in a temp dir), zero-duration steps finished at once; CPU = user + system time of the server process (all threads, /proc/<pid>/stat) from the first hello to the last complete of a pass',
    passes:
      flags.warmUpAssignments === null
        ? 'cold only: one pass per authority process, on the fresh process (V8 compiling and optimising as it goes)'
        : `cold and warm: each authority process serves the shape again and again, with new peer ids and patchsets each time (new cohorts; nothing matched, resumed or reused from an earlier pass); cold = the first pass on the fresh process; warm = the pass after at least ${flags.warmUpAssignments} assignments or 20 passes (the cold pass and unmeasured warm-up passes), as a long-running authority serves it; targets are judged on warm`,
    shapes,
    targets: loadTargets(shapes),
    problems,
    wallSec: Math.round((performance.now() - started) / 100) / 10,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return problems.length > 0 ? 1 : 0;
}

/** `--store postgres://...`: the same load on SQLite and on PostgreSQL, then failover times. */
async function storeBench(flags: Flags, options: PhaseOptions, machine: Record<string, unknown>, started: number): Promise<number> {
  const ratio = (a: number, b: number): number => (b === 0 ? 0 : Math.round((a / b) * 1000) / 1000);
  const problems: string[] = [];
  const check = (name: string, run: Awaited<ReturnType<typeof authorityLoadPhase>>): void => {
    if (run.load.completes !== flags.peers) problems.push(`${name}: expected ${flags.peers} complete frames, counted ${run.load.completes}`);
    if (Object.keys(run.load.errors).length > 0) problems.push(`${name}: error frames: ${JSON.stringify(run.load.errors)}`);
  };
  options.log('store: the authority on SQLite (temp file)');
  const sqlite = await authorityLoadPhase(options);
  options.log(`sqlite: ${sqlite.load.perSec} assignments/s, p50 ${sqlite.load.latencyMs.p50} ms, p99 ${sqlite.load.latencyMs.p99} ms`);
  check('sqlite', sqlite);
  const loadDb = await scratchDatabase(flags.store!);
  let pg;
  try {
    options.log('store: the authority on PostgreSQL (scratch database)');
    pg = await authorityLoadPhase({ ...options, db: loadDb.url });
  } finally {
    await loadDb.drop();
  }
  options.log(`postgres: ${pg.load.perSec} assignments/s, p50 ${pg.load.latencyMs.p50} ms, p99 ${pg.load.latencyMs.p99} ms`);
  check('postgres', pg);
  let failover = null;
  if (flags.kills > 0) {
    const failoverDb = await scratchDatabase(flags.store!);
    try {
      failover = await failoverPhase({
        repoRoot: options.repoRoot,
        db: failoverDb.url,
        kills: flags.kills,
        leaderRenewSec: flags.leaderRenewSec,
        leaderTtlSec: flags.leaderTtlSec,
        deadlineMs: options.deadlineMs,
        log: options.log,
      });
    } finally {
      await failoverDb.drop();
    }
    const target = (flags.leaderTtlSec + 2) * 1000;
    if (failover.maxMs > target) problems.push(`failover max ${failover.maxMs} ms is above the target --leader-ttl + 2 s = ${target} ms`);
  }
  const figures = (run: typeof pg) => ({ assignmentsPerSec: run.load.perSec, latencyMs: run.load.latencyMs, completes: run.load.completes, rssAfterRunMb: run.afterRunMemory.loadedRssMb });
  const result = {
    bench: 'authority',
    mode: 'store',
    ...machine,
    peers: flags.peers,
    cohortSize: flags.cohortSize,
    stepsPerCohort: flags.steps,
    baseline: { what: 'the authority on SQLite (WAL file in a temp dir, --sync ' + flags.sync + ')', ...figures(sqlite) },
    postgres: { what: 'the same authority and load on PostgreSQL (scratch database; one fenced statement per commit batch)', ...figures(pg) },
    ratio: {
      throughputPostgresOverSqlite: ratio(pg.load.perSec, sqlite.load.perSec),
      latencyP50PostgresOverSqlite: ratio(pg.load.latencyMs.p50, sqlite.load.latencyMs.p50),
      latencyP99PostgresOverSqlite: ratio(pg.load.latencyMs.p99, sqlite.load.latencyMs.p99),
    },
    failover: failover === null ? null : { what: `kill -9 of the active authority to the first grant by the new one; --leader-ttl ${flags.leaderTtlSec} --leader-renew ${flags.leaderRenewSec}`, ...failover, targetMaxMs: (flags.leaderTtlSec + 2) * 1000 },
    problems,
    wallSec: Math.round((performance.now() - started) / 100) / 10,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return problems.length > 0 ? 1 : 0;
}

// `--day N`: a day in service (bench/day-bench.ts), a run of its own.
const run = process.argv.includes('--day') ? import('./day-bench.js').then((m) => m.runDayBench(process.argv.slice(2))) : main();
run.then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    killAllChildren();
    process.stderr.write(`bench: ${process.env.BENCH_DEBUG ? (err as Error).stack : (err as Error).message}\n`);
    process.exitCode = 1;
  },
);
