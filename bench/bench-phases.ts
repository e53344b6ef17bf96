import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { percentile } from '../server/sim/sim-metrics.js';
import { generatorModes, type GeneratorMode, type GeneratorResult } from './bench-ipc.js';
import type { LoadClient } from './load-ws-client.js';
import { GeneratorHandle, cpuMeter, freePort, mainThreadSchedSec, readMemory, spawnNode, stopChild, within, type MemoryKb } from './bench-processes.js';

/**
 * The benchmark's phases. Each starts one server process (the bare ws echo
 * server or the real authority from dist/), forks the load generators, and
 * measures: rates from the generators' own clocks, memory from the server's
 * /proc/<pid>/status, CPU from its /proc/<pid>/stat (user + system time, every
 * thread) between `go` and the last generator's `done`.
 */

/** The wire protocol the load clients speak to the authority. */
export type BenchProtocol = 'v1' | 'task-director';

export interface PhaseOptions {
  readonly repoRoot: string;
  readonly peers: number;
  readonly generators: number;
  readonly cohortSize: number;
  readonly stepsPerCohort: number;
  readonly windowMs: number;
  /** Soft fd limit for the server, and per generator. */
  readonly serverNofile: number;
  readonly generatorNofile: number;
  readonly deadlineMs: number;
  readonly sync: 'normal' | 'full';
  /** v1 peers on `/v1/peer` (default) or Task Director clients on `/ws/api/1/<id>/`. */
  readonly protocol?: BenchProtocol;
  /** A `postgres://` URL for the authority's store; default a SQLite file in a temp dir. */
  readonly db?: string;
  /** `--idle`: how long both servers hold their idle connections after the joins before RSS is read again. */
  readonly idleHoldMs?: number;
  /** The load generators' WebSocket client (bench/load-ws-client.ts); default the lean one. */
  readonly loadClient?: LoadClient;
  /** When set, the authority runs with `--cpu-prof` and writes its profile here. */
  readonly profileDir: string | null;
  readonly log: (line: string) => void;
}

export interface LoadFigures {
  readonly rounds: number;
  readonly framesReceived: number;
  readonly framesPerSec: number;
  readonly elapsedSec: number;
  readonly perSec: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly samples: number };
  readonly completes: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly unexpectedCloses: number;
  /** CPU seconds the server process(es) used from `go` to the last `done`. */
  readonly serverCpuSec: number;
  /**
   * CPU seconds the load generators used in the same window: on a 2-core machine the load client
   * competes with the server for the CPUs, so it bounds the rate too (the same client drives both
   * implementations in bench/original/).
   */
  readonly clientCpuSec: number;
}

export interface MemoryFigures {
  /** Server RSS with no connections, MB. */
  readonly baseRssMb: number;
  /** RSS once every client is connected (and, for the authority, after its phase ran), MB. */
  readonly loadedRssMb: number;
  readonly peakRssMb: number;
  /** (loaded − base) ÷ connections, KB. */
  readonly perConnectionKb: number;
}

export const remaining = (deadline: number): number => Math.max(1, deadline - performance.now());
const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

function merge(results: readonly GeneratorResult[], serverCpuSec: number, clientCpuSec: number): LoadFigures {
  const rounds = results.reduce((s, r) => s + r.rounds, 0);
  const started = Math.min(...results.map((r) => r.startedAtMs));
  const finished = Math.max(...results.map((r) => r.finishedAtMs));
  const latencies = results.flatMap((r) => r.latenciesMs);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  const elapsedSec = Math.max(0.001, (finished - started) / 1000);
  const round2 = (x: number): number => Math.round(x * 100) / 100;
  const framesReceived = results.reduce((s, r) => s + r.framesReceived, 0);
  return {
    rounds,
    framesReceived,
    framesPerSec: Math.round(framesReceived / elapsedSec),
    elapsedSec: round2(elapsedSec),
    perSec: Math.round(rounds / elapsedSec),
    latencyMs: latencies.length === 0 ? { p50: 0, p99: 0, samples: 0 } : { p50: round2(percentile(latencies, 50)), p99: round2(percentile(latencies, 99)), samples: latencies.length },
    completes: results.reduce((s, r) => s + r.completes, 0),
    errors,
    unexpectedCloses: results.reduce((s, r) => s + r.unexpectedCloses, 0),
    serverCpuSec: Math.round(serverCpuSec * 1000) / 1000,
    clientCpuSec: Math.round(clientCpuSec * 1000) / 1000,
  };
}

export function memoryFigures(base: MemoryKb, loaded: MemoryKb, connections: number): MemoryFigures {
  return {
    baseRssMb: mb(base.rssKb),
    loadedRssMb: mb(loaded.rssKb),
    peakRssMb: mb(loaded.hwmKb),
    perConnectionKb: Math.round(((loaded.rssKb - base.rssKb) / connections) * 10) / 10,
  };
}

/**
 * Load-generator processes kept from one pass to the next (each pass still opens its own
 * connections with its own client ids). A fresh process runs its closed loop in code V8 has
 * not optimised yet, and on 2 cores that CPU is taken from the server it measures: in the
 * Task Director passes of bench:original (1,000 tasks, under half a second) a fresh client
 * spent most of its CPU compiling. Kept, the client is warm from its second pass on, as the
 * servers are after their warm-up; both implementations are driven by the same processes.
 */
export class GeneratorPool {
  private readonly handles: GeneratorHandle[] = [];

  /** The i-th generator: the one kept from an earlier pass, or a new one. */
  take(o: PhaseOptions, i: number): GeneratorHandle {
    let gen = this.handles[i];
    if (gen === undefined || gen.hasExited) {
      gen = new GeneratorHandle(spawnNode([join(o.repoRoot, 'dist/bench/load-generator.js')], { nofile: o.generatorNofile, ipc: true, cwd: o.repoRoot }));
      this.handles[i] = gen;
    }
    return gen;
  }

  /** Ends every kept process (after its pass was closed). */
  end(): void {
    for (const gen of this.handles.splice(0)) gen.exit();
  }
}

/**
 * Forks the generators (or takes them from `pool`, which keeps them for the next pass), splits
 * the peers between them, and waits until all are connected.
 */
export async function connectGenerators(o: PhaseOptions, mode: GeneratorMode, url: string, deadline: number, pass = 0, pool: GeneratorPool | null = null): Promise<GeneratorHandle[]> {
  const gens: GeneratorHandle[] = [];
  const per = Math.ceil(o.peers / o.generators);
  for (let i = 0; i < o.generators; i++) {
    const firstPeer = i * per;
    const count = Math.min(per, o.peers - firstPeer);
    if (count <= 0) break;
    const gen = pool === null ? new GeneratorHandle(spawnNode([join(o.repoRoot, 'dist/bench/load-generator.js')], { nofile: o.generatorNofile, ipc: true, cwd: o.repoRoot })) : pool.take(o, i);
    gen.send({
      kind: 'config',
      mode,
      client: o.loadClient ?? 'lean',
      url,
      localAddress: `127.0.0.${2 + i}`,
      firstPeer,
      count,
      cohortSize: o.cohortSize,
      stepsPerCohort: o.stepsPerCohort,
      windowMs: o.windowMs,
      connectConcurrency: 128,
      pass,
    });
    gens.push(gen);
  }
  const connected = await within(Promise.all(gens.map((g) => g.next('connected'))), remaining(deadline), `${o.peers} connections`);
  const failed = connected.reduce((s, c) => s + c.failed, 0);
  if (failed > 0) throw new Error(`${failed} of ${o.peers} connections failed (first: ${connected.find((c) => c.firstError)?.firstError}); check ulimit -n and the ephemeral port range`);
  return gens;
}

/** The load generators' processes (each `sh -c ... exec node`, so the pid is node's). */
const generatorPids = (gens: readonly GeneratorHandle[]): number[] => gens.map((g) => g.child.pid!);

/** Closes the pass's connections; the processes end unless `keep` (they belong to a {@link GeneratorPool}). */
export async function closeGenerators(gens: readonly GeneratorHandle[], deadline: number, keep = false): Promise<void> {
  for (const g of gens) g.send({ kind: 'close' });
  await within(Promise.all(gens.map((g) => g.next('closed'))), remaining(deadline), 'load generators to close their connections');
  if (!keep) for (const g of gens) g.exit();
}

export async function startEchoServer(o: PhaseOptions, deadline: number): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawnNode([join(o.repoRoot, 'dist/bench/echo-server.js'), String(port)], { nofile: o.serverNofile, cwd: o.repoRoot, stdoutTo: 'parent' });
  await within(
    new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    }),
    remaining(deadline),
    'the echo server to listen',
  );
  return { child, url: `ws://127.0.0.1:${port}/` };
}

/** An authority process the benchmark started; its passes are run by {@link authorityPass}. */
export interface AuthorityProcess {
  readonly child: ChildProcess;
  /** performance.now() just before the spawn: pass windows are reported as seconds after it (a `--cpu-prof` profile starts about then). */
  readonly spawnedAtMs: number;
  /** The v1 peer endpoint. */
  readonly url: string;
  /** ws:// origin (Task Director clients add their path). */
  readonly origin: string;
  readonly httpUrl: string;
  readonly dir: string;
}

/** What the authority has counted so far (its /metrics): row-level store writes (every table) and steps resolved by outcome. */
interface AuthorityCounts {
  readonly rows: number;
  readonly built: number;
  readonly reused: number;
}

async function countsOf(a: AuthorityProcess): Promise<AuthorityCounts> {
  const res = await fetch(`${a.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  let rows = 0;
  for (const m of text.matchAll(/^taskshard_store_rows_written_total\{[^}]*\} (\d+(?:\.\d+)?)$/gm)) rows += Number(m[1]);
  const steps = (outcome: string): number => Number(new RegExp(`^taskshard_steps_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { rows, built: steps('built'), reused: steps('reused') };
}

/** The real authority, from dist/, on a real SQLite file in a fresh temporary directory. */
export async function startAuthority(o: PhaseOptions, deadline: number, helloTimeoutSec: number | null = null): Promise<AuthorityProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'taskshard-bench-'));
  const profile = o.profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', o.profileDir];
  // Every peer connects (one address per generator) before any says hello: lift the caps that
  // guard a real fleet just enough; attackers (from 127.0.0.1) still meet the defaults.
  const caps = [
    '--max-connections', String(Math.max(10_000, o.peers + 2_000)),
    '--max-connections-per-address', String(Math.max(1_000, Math.ceil(o.peers / o.generators))),
    // Every cohort is one change of the same repo and cache: --idle 10000 opens 1,000 of them, more than the default 256.
    '--max-cohorts-per-source', String(Math.max(256, Math.ceil(o.peers / o.cohortSize))),
    // Clients connect first and say hello at `go`: on a loaded machine that can take longer than the default 10 s.
    ...(helloTimeoutSec !== null ? ['--hello-timeout', String(helloTimeoutSec)] : o.peers > 2_000 ? ['--hello-timeout', '600'] : []),
  ];
  const spawnedAtMs = performance.now();
  const child = spawnNode([...profile, join(o.repoRoot, 'dist/cli/main.js'), 'server', '--port', String(port), '--db', o.db ?? join(dir, 'bench.db'), '--log-level', 'warn', '--sync', o.sync, ...caps], {
    nofile: o.serverNofile,
    cwd: o.repoRoot,
  });
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `authority exited (${signal ?? `code ${code}`})`));
  const healthy = async (): Promise<void> => {
    for (;;) {
      if (exited) throw new Error(exited);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await within(healthy(), remaining(deadline), 'the authority to answer /healthz');
  return { child, spawnedAtMs, url: `ws://127.0.0.1:${port}/v1/peer`, origin: `ws://127.0.0.1:${port}`, httpUrl: `http://127.0.0.1:${port}`, dir };
}

export async function stopAuthority(a: AuthorityProcess): Promise<void> {
  await stopChild(a.child);
  rmSync(a.dir, { recursive: true, force: true });
}

export async function settle(pid: number): Promise<MemoryKb> {
  // A few samples a moment apart; the last one after the server's event loop has drained.
  let m = readMemory(pid);
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 300));
    m = readMemory(pid);
  }
  return m;
}

export interface EchoLoadResult {
  readonly load: LoadFigures;
  readonly memory: MemoryFigures;
}

/** Baseline: a bare ws echo server, the same number of clients, each in a closed loop for the window. */
export async function echoLoadPhase(o: PhaseOptions): Promise<EchoLoadResult> {
  const deadline = o.deadlineMs;
  const server = await startEchoServer(o, deadline);
  try {
    const base = await settle(server.child.pid!);
    const gens = await connectGenerators(o, generatorModes.echo, server.url, deadline);
    const connected = await settle(server.child.pid!);
    o.log(`echo baseline: ${o.peers} clients connected; closed loop for ${o.windowMs / 1000} s`);
    const cpu = cpuMeter([server.child.pid!]);
    const clientCpu = cpuMeter(generatorPids(gens));
    for (const g of gens) g.send({ kind: 'go' });
    const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'the echo closed loop to finish');
    const cpuSec = cpu.stop();
    const clientCpuSec = clientCpu.stop();
    await closeGenerators(gens, deadline);
    return { load: merge(done.map((d) => d.result), cpuSec, clientCpuSec), memory: memoryFigures(base, connected, o.peers) };
  } finally {
    await stopChild(server.child);
  }
}

/** One pass of the load against an authority process: from its first hello to its last complete. */
export interface PassResult {
  readonly load: LoadFigures;
  /** Row-level store writes committed from `go` to the last `done`. */
  readonly rowsWritten: number;
  /**
   * Steps the authority counted as built and as reused from a memo in the pass (`taskshard_steps_total`):
   * every step of a pass is built by one of its peers, none reused, or the pass did less work than the
   * cold one (the shape's checks report it).
   */
  readonly stepsBuilt: number;
  readonly stepsReused: number;
  /** The authority's main thread in the pass: seconds on a CPU and seconds runnable but waiting (null: no schedstat). */
  readonly mainThread: { readonly runSec: number; readonly waitSec: number } | null;
  /** Seconds after the authority's spawn at `go` and at the last `done` (`bench/profile-summary.ts --from-sec --to-sec`). */
  readonly windowSec: { readonly from: number; readonly to: number };
}

export interface AuthorityLoadResult {
  /** The first pass (on the fresh process): the same as `passes[0]`. */
  readonly load: LoadFigures;
  readonly rowsWritten: number;
  /**
   * Every pass in order, each against the same process with its own peers and cohorts: [cold] or
   * [cold, warm-up..., warm]. A later pass runs the same shape after the earlier ones, as a long-running
   * authority sees it: V8 has compiled and optimised the paths, the caches of schemas are filled, nothing
   * of an earlier pass is matched or reused (new peer ids, new patchsets, so new cohorts; no base sha, so
   * no memo; {@link PassResult.stepsBuilt} says so).
   */
  readonly passes: readonly PassResult[];
  /** Connected, before hello. */
  readonly connectedMemory: MemoryFigures;
  /** After the first pass, every peer still connected, every cohort in memory. */
  readonly afterRunMemory: MemoryFigures;
  readonly cohorts: number;
}

/** The attacks of bench/abuse-generator.ts. */
export const abuseAttacks = ['bad-frames', 'expensive', 'idle'] as const;
export type AbuseAttack = (typeof abuseAttacks)[number];

/** What the abusive connections of `--abuse K` did during a run. */
export interface AbuseFigures {
  readonly attack: AbuseAttack;
  readonly connections: number;
  /** Upgrades the authority refused, by HTTP status. */
  readonly refused: Readonly<Record<string, number>>;
  readonly framesSent: number;
  readonly connectionsOpened: number;
  readonly closeCodes: Readonly<Record<string, number>>;
}

const sinceSpawnSec = (a: AuthorityProcess): number => Math.round((performance.now() - a.spawnedAtMs) / 100) / 10;

/** `go` to every generator, then their `done`: CPU of the authority and its rows written in between. */
async function measurePass(o: PhaseOptions, a: AuthorityProcess, gens: readonly GeneratorHandle[]): Promise<PassResult> {
  const before = await countsOf(a);
  const from = sinceSpawnSec(a);
  const schedBefore = mainThreadSchedSec(a.child.pid!);
  const cpu = cpuMeter([a.child.pid!]);
  const clientCpu = cpuMeter(generatorPids(gens));
  for (const g of gens) g.send({ kind: 'go' });
  const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(o.deadlineMs), 'every peer to get complete');
  const cpuSec = cpu.stop();
  const clientCpuSec = clientCpu.stop();
  const schedAfter = mainThreadSchedSec(a.child.pid!);
  const to = sinceSpawnSec(a);
  const after = await countsOf(a);
  const mainThread = schedBefore && schedAfter ? { runSec: schedAfter.runSec - schedBefore.runSec, waitSec: schedAfter.waitSec - schedBefore.waitSec } : null;
  return { load: merge(done.map((d) => d.result), cpuSec, clientCpuSec), rowsWritten: after.rows - before.rows, stepsBuilt: after.built - before.built, stepsReused: after.reused - before.reused, mainThread, windowSec: { from, to } };
}

const modeOf = (o: PhaseOptions): GeneratorMode => (o.protocol === 'task-director' ? generatorModes.taskDirector : generatorModes.protocol);
const targetOf = (o: PhaseOptions, a: AuthorityProcess): string => (o.protocol === 'task-director' ? a.origin : a.url);

/**
 * One pass of the shape against an authority that is already running (bench/original/ keeps one
 * per client count): connect `pass`'s clients, let the connection burst settle, run, close them.
 */
export async function authorityPass(o: PhaseOptions, a: AuthorityProcess, pass: number, pool: GeneratorPool | null = null): Promise<PassResult> {
  const gens = await connectGenerators(o, modeOf(o), targetOf(o, a), o.deadlineMs, pass, pool);
  await settle(a.child.pid!);
  const result = await measurePass(o, a, gens);
  await closeGenerators(gens, o.deadlineMs, pool !== null);
  return result;
}

/**
 * The authority through the full protocol: N peers in cohorts finishing
 * zero-duration steps; with `abuse` > 0, that many extra connections flood it
 * with bad frames (a separate process) for the whole run. `passes` > 1 runs the
 * shape again against the same process, each time with new peers (the warm-up
 * and warm passes, see {@link AuthorityLoadResult.passes}).
 */
export async function authorityLoadPhase(o: PhaseOptions, abuse = 0, attack: AbuseAttack = 'bad-frames', passes = 1): Promise<AuthorityLoadResult & { abuse: AbuseFigures | null }> {
  const deadline = o.deadlineMs;
  // Abuse runs keep the default hello deadline: the idle attack is measured against it.
  const authority = await startAuthority(o, deadline, abuse > 0 ? null : 600);
  let abuser: ChildProcess | null = null;
  // The same load-generator processes serve every pass: warm from the second pass on, as the authority is.
  const pool = new GeneratorPool();
  try {
    const pid = authority.child.pid!;
    const base = await settle(pid);
    const taskDirector = o.protocol === 'task-director';
    const gens = await connectGenerators(o, modeOf(o), targetOf(o, authority), deadline, 0, pool);
    const connected = await settle(pid);
    const cohorts = Math.ceil(o.peers / o.cohortSize);
    if (abuse > 0) {
      const child = spawnNode([join(o.repoRoot, 'dist/bench/abuse-generator.js'), authority.url, String(abuse), attack], { nofile: abuse + 256, cwd: o.repoRoot, stdoutTo: 'parent' });
      abuser = child;
      await within(
        new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
          child.once('exit', (code) => reject(new Error(`the abuse generator exited with ${code}`)));
        }),
        remaining(deadline),
        'the abuse generator to start',
      );
      o.log(`authority: ${abuse} abusive connections (${attack})`);
    }
    o.log(`authority: ${o.peers} ${taskDirector ? 'Task Director clients' : 'peers'} connected; ${cohorts} cohorts x ${o.stepsPerCohort} zero-duration steps${passes > 1 ? ' (cold pass)' : ''}`);
    const cold = await measurePass(o, authority, gens);
    const abuseFigures = abuser ? await stopAbuser(abuser, abuse, attack) : null;
    abuser = null;
    const after = await settle(pid);
    await closeGenerators(gens, deadline, true);
    const results = [cold];
    for (let pass = 1; pass < passes; pass++) {
      o.log(`authority: pass ${pass + 1} of ${passes} (${pass === passes - 1 ? 'warm' : 'warm-up'}), the same shape against the same process, new peers and cohorts`);
      results.push(await authorityPass(o, authority, pass, pool));
    }
    if (passes > 1) {
      const cpuUs = (r: PassResult): number => Math.round((r.load.serverCpuSec * 1e6) / Math.max(1, r.load.rounds));
      o.log(`authority: passes at ${results.map((r) => `${r.windowSec.from}-${r.windowSec.to} s`).join(', ')} after the spawn; ${results.map(cpuUs).join(', ')} µs CPU per assignment`);
    }
    return {
      load: cold.load,
      rowsWritten: cold.rowsWritten,
      passes: results,
      connectedMemory: memoryFigures(base, connected, o.peers),
      afterRunMemory: memoryFigures(base, after, o.peers),
      cohorts,
      abuse: abuseFigures,
    };
  } finally {
    pool.end();
    if (abuser) await stopChild(abuser);
    await stopAuthority(authority);
  }
}

async function stopAbuser(child: ChildProcess, connections: number, attack: AbuseAttack): Promise<AbuseFigures> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // stdout already carried `ready`; the report is the last line.
  // 'close' (not 'exit'): stdout may still hold the line when the process has exited.
  const exited = new Promise<string>((resolve) => child.once('close', (code, signal) => resolve(signal ?? `code ${code}`)));
  child.kill('SIGTERM');
  const how = await exited;
  const last = out.trim().split('\n').pop();
  if (!last) throw new Error(`the abuse generator ended (${how}) without reporting`);
  const line = JSON.parse(last) as { sent?: number; opened?: number; refused?: Record<string, number>; closeCodes?: Record<string, number> };
  return { attack, connections, framesSent: line.sent ?? 0, connectionsOpened: line.opened ?? 0, refused: line.refused ?? {}, closeCodes: line.closeCodes ?? {} };
}

/**
 * Any server already running (bench/original/ starts the original Python one): Task Director
 * clients in a closed loop against `origin`, CPU summed over `pids` (every process serving).
 * `pass` names the clients and patchsets as {@link authorityPass} does.
 */
export async function externalTaskDirectorPhase(o: PhaseOptions, origin: string, pids: readonly number[], pass = 0, pool: GeneratorPool | null = null): Promise<LoadFigures> {
  const deadline = o.deadlineMs;
  const gens = await connectGenerators(o, generatorModes.taskDirector, origin, deadline, pass, pool);
  // As authorityPass does: the connection burst settles before `go`.
  await new Promise((r) => setTimeout(r, 900));
  const cpu = cpuMeter(pids);
  const clientCpu = cpuMeter(generatorPids(gens));
  for (const g of gens) g.send({ kind: 'go' });
  const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'every client to get SCHEMA_COMPLETE');
  const cpuSec = cpu.stop();
  const clientCpuSec = clientCpu.stop();
  await closeGenerators(gens, deadline, pool !== null);
  return merge(done.map((d) => d.result), cpuSec, clientCpuSec);
}
