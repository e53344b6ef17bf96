import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, setPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { driveCohorts } from './day-driver.js';
import { threadCpuBetween, threadCpuSec, type ThreadCpuSec } from './day-threads.js';
import { fillHistory, wireSchemaOf } from './day-history.js';
import { freePort, killAllChildren, readMemory, spawnNode, stopChild } from './bench-processes.js';

/**
 * `npm run bench -- --day N`: a day in service (issue 11, item 8). One real
 * authority process (dist/cli/main.js, a SQLite file in a temp dir) is driven
 * through N cohorts (default 20,000) of 3 peers × 4 steps, each its own exact
 * source state, `--concurrency` cohorts in flight, with short windows
 * (`--retention-sec`, `--history-sec`, memo TTL = retention) so the plateau of
 * memory and file size shows within the run. Prints ONE JSON line: cohorts/s
 * over the first and the last 10 %, their ratio, the longest event-loop block
 * (max of the authority's own event-loop delay, read from /metrics every
 * second; as its baseline, the same measure in an idle Node process in the
 * same run) and the longest stall split into the authority's main thread
 * running and waiting for a CPU (server/loop-stalls.ts), the longest history-pruning batch and reclaim step the authority
 * logged (`pruner`), RSS, heap and database size at each 10 %, the restart time on the
 * day's file, and the start time on a file holding `--history-fill` cohorts
 * of history (default 100,000); as their baseline, the same CLI starting and
 * exiting (`--version`) in the same run. `--driver-nice K` runs the driver's
 * thread at niceness K while it drives (default 10; 0: the same priority as the
 * authority): its peers stand for CI jobs on other machines, and on this 2-core
 * machine a driver at the same priority takes the authority's core away from
 * it, which the stall split shows as time waiting for a CPU.
 */
const usage = `usage: npm run bench -- --day N [--concurrency C] [--retention-sec S] [--history-sec S] [--history-fill H] [--driver-nice K] [--no-build]`;

class UsageError extends Error {}

interface DayFlags {
  cohorts: number;
  concurrency: number;
  retentionSec: number;
  historySec: number;
  historyFill: number;
  /** Niceness of the driver's thread while it drives (default 10; 0: the same priority as the authority). */
  driverNice: number;
  build: boolean;
}

function int(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got "${value}"`);
  return Number(value);
}

function parseDayFlags(argv: string[]): DayFlags {
  // `--day` alone means the default 20,000.
  const args = argv.map((a, i) => (a === '--day' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) ? '--day=20000' : a));
  const { values } = parseArgs({
    args,
    options: {
      day: { type: 'string' },
      concurrency: { type: 'string' },
      'retention-sec': { type: 'string' },
      'history-sec': { type: 'string' },
      'history-fill': { type: 'string' },
      'driver-nice': { type: 'string' },
      'no-build': { type: 'boolean' },
    },
    strict: true,
  });
  return {
    cohorts: int(values.day === '' ? undefined : values.day, 'day', 10, 1_000_000, 20_000),
    concurrency: int(values.concurrency, 'concurrency', 1, 256, 8),
    retentionSec: int(values['retention-sec'], 'retention-sec', 1, 86_400, 20),
    historySec: int(values['history-sec'], 'history-sec', 1, 86_400 * 14, 40),
    historyFill: int(values['history-fill'], 'history-fill', 0, 1_000_000, 100_000),
    driverNice: int(values['driver-nice'], 'driver-nice', 0, 19, 10),
    build: values['no-build'] !== true,
  };
}

interface Authority {
  readonly child: ChildProcess;
  readonly port: number;
  /** Spawn to the "listening" line, ms. */
  readonly startMs: number;
  /** The longest single history-pruning batch and reclaim step the authority has logged so far, ms. */
  readonly pruner: { longestBatchMs: number; longestReclaimMs: number };
}

async function startAuthority(repoRoot: string, db: string, args: readonly string[]): Promise<Authority> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawnNode([join(repoRoot, 'dist/cli/main.js'), 'server', '--port', String(port), '--db', db, '--log-level', 'info', ...args], {
    nofile: 4096,
    cwd: repoRoot,
    stdoutTo: 'parent',
  });
  let out = '';
  const pruner = { longestBatchMs: 0, longestReclaimMs: 0 };
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      // Each 'history pruned' line says its longest batch and reclaim step, wall time on the worker thread (chunks end at a line here: pino writes whole lines).
      for (const m of d.matchAll(/"longestBatchMs":([\d.]+),"longestReclaimMs":([\d.]+)/g)) {
        pruner.longestBatchMs = Math.max(pruner.longestBatchMs, Number(m[1]));
        pruner.longestReclaimMs = Math.max(pruner.longestReclaimMs, Number(m[2]));
      }
      out += d;
      if (out.includes('"taskshard authority listening"')) resolve();
      // Keep only the tail: the authority logs a line per lifecycle event.
      if (out.length > 65_536) out = out.slice(-4096);
    });
    child.once('exit', (code) => reject(new Error(`the authority exited with ${code} before listening:\n${out.slice(-2000)}`)));
  });
  const startMs = performance.now() - t0;
  child.stdout!.resume();
  return { child, port, startMs, pruner };
}

function fileMb(path: string): number {
  const size = (p: string): number => (existsSync(p) ? statSync(p).size : 0);
  return Math.round(((size(path) + size(`${path}-wal`)) / 1024 / 1024) * 10) / 10;
}

/**
 * From the authority's /metrics: its event-loop delay maximum since the last
 * scrape, ms (prom-client resets it on every scrape), and its V8 heap in use, MB.
 */
async function scrape(port: number): Promise<{ lagMaxMs: number; heapUsedMb: number; stall: StallMs } | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const lag = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
    const heap = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
    if (!lag || !heap) return null;
    const part = (name: string): number | null => {
      const m = new RegExp(`^taskshard_event_loop_longest_stall_seconds\\{part="${name}"\\} (\\S+)$`, 'm').exec(text);
      return m ? ms(Number(m[1]) * 1000) : null;
    };
    return {
      lagMaxMs: ms(Number(lag[1]) * 1000),
      heapUsedMb: Math.round((Number(heap[1]) / 1024 / 1024) * 10) / 10,
      stall: { ms: part('stall') ?? 0, runningMs: part('running'), waitingMs: part('waiting') },
    };
  } catch {
    return null;
  }
}

const ms = (v: number): number => Math.round(v * 10) / 10;

/**
 * The authority's longest event-loop stall in a stretch (its own 10 ms timer's lateness,
 * server/loop-stalls.ts), with its main thread's time on a CPU and waiting for a CPU over that
 * timer period: which part of a long block was the authority's work, and which the machine's.
 */
interface StallMs {
  readonly ms: number;
  readonly runningMs: number | null;
  readonly waitingMs: number | null;
}

const noStall: StallMs = { ms: 0, runningMs: null, waitingMs: null };
const longer = (a: StallMs, b: StallMs): StallMs => (b.ms > a.ms ? b : a);

/** From the authority's /metrics: store rows written so far, by table (`taskshard_store_rows_written_total`). */
async function rowsByTable(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const rows: Record<string, number> = {};
  for (const m of text.matchAll(/^taskshard_store_rows_written_total\{table="([^"]+)"\} (\S+)$/gm)) rows[m[1]!] = Number(m[2]);
  return rows;
}

/**
 * The baseline for the event-loop block, in the same run: an idle Node process
 * measuring its own event-loop delay the same way (10 ms resolution). What it
 * sees is the machine not scheduling a process, not the authority's work.
 */
function startIdleProbe(): { stop(): Promise<number> } {
  const script = `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 }); h.enable();
setInterval(() => {}, 1000);
process.on('SIGTERM', () => { process.stdout.write(String(h.max / 1e6)); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  return {
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve(Math.round(Number(out) * 10) / 10));
        child.kill('SIGTERM');
      }),
  };
}

interface Decile {
  readonly percent: number;
  readonly cohorts: number;
  readonly elapsedSec: number;
  readonly rssMb: number;
  readonly dbMb: number;
  /** V8 heap in use at the latest scrape (RSS also holds freed heap V8 has not returned). */
  readonly heapUsedMb: number;
  readonly longestBlockMs: number;
  /** The longest stall in this tenth, split into the authority's running time and its wait for a CPU. */
  readonly stall: StallMs;
  /** The authority's CPU seconds in this tenth: main thread, other threads (bench/day-threads.ts). */
  readonly cpuSec: ThreadCpuSec | null;
}

export async function runDayBench(argv: string[]): Promise<number> {
  let flags: DayFlags;
  try {
    flags = parseDayFlags(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${usage}\n`);
    return 2;
  }
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  if (flags.build) {
    log('building dist/ (skip with --no-build)');
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const dir = mkdtempSync(join(tmpdir(), 'taskshard-day-'));
  const db = join(dir, 'day.db');
  const loadBefore = loadavg()[0]!;
  const windows = [
    '--retention', String(flags.retentionSec / 3600),
    '--history-days', String(flags.historySec / 86_400),
    '--memo-ttl', String(flags.retentionSec / 3600),
    '--idle-cohort-ttl', String(flags.retentionSec / 3600),
  ];
  try {
    log(`day: ${flags.cohorts} cohorts of 3 peers x 4 steps, ${flags.concurrency} in flight; retention ${flags.retentionSec} s, history ${flags.historySec} s`);
    let auth = await startAuthority(repoRoot, db, windows);
    const n = flags.cohorts;
    const tenth = Math.max(1, Math.floor(n / 10));
    const doneAt: number[] = [];
    const deciles: Decile[] = [];
    let blockMs = 0;
    let decileBlockMs = 0;
    let stall = noStall;
    let decileStall = noStall;
    let heapUsedMb = 0;
    const probe = startIdleProbe();
    // With --driver-nice, the driver (this thread: the peers, which in service run on other machines)
    // yields the cores to the authority and the idle probe, both started at the usual priority.
    if (flags.driverNice > 0) setPriority(flags.driverNice);
    const t0 = performance.now();
    const cpuAtStart = threadCpuSec(auth.child.pid!);
    let cpuAtDecile = cpuAtStart;
    const scraper = setInterval(() => {
      void scrape(auth.port).then((m) => {
        if (m === null) return;
        blockMs = Math.max(blockMs, m.lagMaxMs);
        decileBlockMs = Math.max(decileBlockMs, m.lagMaxMs);
        stall = longer(stall, m.stall);
        decileStall = longer(decileStall, m.stall);
        heapUsedMb = m.heapUsedMb;
      });
    }, 1000);
    const result = await driveCohorts({
      wsUrl: `ws://127.0.0.1:${auth.port}`,
      cohorts: n,
      peersPerCohort: 3,
      schema: wireSchemaOf(4),
      concurrency: flags.concurrency,
      onCohortDone: (_i, at) => {
        doneAt.push(at);
        if (doneAt.length % tenth === 0 && deciles.length < 10) {
          const cpuNow = threadCpuSec(auth.child.pid!);
          const d: Decile = {
            percent: (deciles.length + 1) * 10,
            cohorts: doneAt.length,
            elapsedSec: Math.round((at - t0) / 100) / 10,
            rssMb: Math.round(readMemory(auth.child.pid!).rssKb / 102.4) / 10,
            dbMb: fileMb(db),
            heapUsedMb,
            longestBlockMs: decileBlockMs,
            stall: decileStall,
            cpuSec: threadCpuBetween(cpuAtDecile, cpuNow),
          };
          cpuAtDecile = cpuNow;
          decileBlockMs = 0;
          decileStall = noStall;
          deciles.push(d);
          log(`day: ${JSON.stringify(d)}`);
        }
      },
    });
    clearInterval(scraper);
    const cpuSec = threadCpuBetween(cpuAtStart, threadCpuSec(auth.child.pid!));
    const idleProcessBlockMs = await probe.stop();
    // Back to the usual priority before the restarts are timed (allowed to root only; said if not).
    let driverNiceRestored = true;
    if (flags.driverNice > 0) {
      try {
        setPriority(0);
      } catch (err) {
        driverNiceRestored = false;
        log(`day: could not restore this thread's priority (${(err as Error).message}); the restarts below run at nice ${flags.driverNice}`);
      }
    }
    const final = await scrape(auth.port);
    blockMs = Math.max(blockMs, final?.lagMaxMs ?? 0);
    if (final !== null) stall = longer(stall, final.stall);
    // Rows per assignment over the whole run (joins, cohorts and memos included), by table.
    const rows = await rowsByTable(auth.port);
    const perAssign = (v: number): number => Math.round((v / Math.max(1, result.assigns)) * 100) / 100;
    const rowsPerAssign = { total: perAssign(Object.values(rows).reduce((a, b) => a + b, 0)), ...Object.fromEntries(Object.entries(rows).map(([t, v]) => [t, perAssign(v)])) };
    const rate = (from: number, to: number): number => {
      const start = from === 0 ? t0 : doneAt[from - 1]!;
      return Math.round(((to - from) / ((doneAt[to - 1]! - start) / 1000)) * 10) / 10;
    };
    const first = rate(0, tenth);
    const last = rate(n - tenth, n);

    // The baseline for start-up times, in the same run: the same CLI starting and exiting (--version).
    const b0 = performance.now();
    execFileSync(process.execPath, [join(repoRoot, 'dist/cli/main.js'), '--version'], { stdio: 'ignore' });
    const cliStartMs = Math.round(performance.now() - b0);

    const prunerDuringRun = { ...auth.pruner };
    // Restart on the day's file: SIGTERM, then a new process on the same file, spawn to listening.
    await stopChild(auth.child);
    auth = await startAuthority(repoRoot, db, windows);
    const restartMs = Math.round(auth.startMs);
    const restartDbMb = fileMb(db);
    await stopChild(auth.child);

    // Start-up with a long history in the file (resolved within --history-days, outside --retention).
    let history: Record<string, number> | null = null;
    if (flags.historyFill > 0) {
      const big = join(dir, 'history.db');
      log(`day: filling ${big} with ${flags.historyFill} cohorts of history`);
      const fillSec = await fillHistory(big, flags.historyFill);
      const started = await startAuthority(repoRoot, big, []);
      history = { cohorts: flags.historyFill, fillSec: Math.round(fillSec), dbMb: fileMb(big), startMs: Math.round(started.startMs) };
      await stopChild(started.child);
    }
    const line = {
      bench: 'day',
      cohorts: n,
      peersPerCohort: 3,
      stepsPerCohort: 4,
      concurrency: flags.concurrency,
      driverNice: flags.driverNice,
      ...(flags.driverNice > 0 ? { driverNiceRestored } : {}),
      retentionSec: flags.retentionSec,
      historySec: flags.historySec,
      cohortsPerSecFirst10: first,
      cohortsPerSecLast10: last,
      ratio: Math.round((last / first) * 1000) / 1000,
      longestBlockMs: blockMs,
      idleProcessBlockMs,
      longestStall: stall,
      cpuSec,
      pruner: prunerDuringRun,
      deciles,
      restartMs,
      restartDbMb,
      cliStartMs,
      history,
      assigns: result.assigns,
      rowsPerAssign,
      errors: result.errors,
      totalSec: Math.round((doneAt[n - 1]! - t0) / 100) / 10,
      machine: { cpus: cpus().length, loadavg1mBefore: Math.round(loadBefore * 10) / 10, loadavg1mAfter: Math.round(loadavg()[0]! * 10) / 10 },
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return 0;
  } finally {
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
  }
}
