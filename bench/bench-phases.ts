import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { percentile } from '../server/sim/sim-metrics.js';
import { generatorModes, type GeneratorMode, type GeneratorResult } from './bench-ipc.js';
import { GeneratorHandle, cpuMeter, freePort, readMemory, spawnNode, stopChild, within, type MemoryKb } from './bench-processes.js';

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

const remaining = (deadline: number): number => Math.max(1, deadline - performance.now());
const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

function merge(results: readonly GeneratorResult[], serverCpuSec: number): LoadFigures {
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
  };
}

function memoryFigures(base: MemoryKb, loaded: MemoryKb, connections: number): MemoryFigures {
  return {
    baseRssMb: mb(base.rssKb),
    loadedRssMb: mb(loaded.rssKb),
    peakRssMb: mb(loaded.hwmKb),
    perConnectionKb: Math.round(((loaded.rssKb - base.rssKb) / connections) * 10) / 10,
  };
}

/** Forks the generators, splits the peers between them, and waits until all are connected. */
async function connectGenerators(o: PhaseOptions, mode: GeneratorMode, url: string, deadline: number): Promise<GeneratorHandle[]> {
  const gens: GeneratorHandle[] = [];
  const per = Math.ceil(o.peers / o.generators);
  for (let i = 0; i < o.generators; i++) {
    const firstPeer = i * per;
    const count = Math.min(per, o.peers - firstPeer);
    if (count <= 0) break;
    const child = spawnNode([join(o.repoRoot, 'dist/bench/load-generator.js')], { nofile: o.generatorNofile, ipc: true, cwd: o.repoRoot });
    const gen = new GeneratorHandle(child);
    gen.send({
      kind: 'config',
      mode,
      url,
      localAddress: `127.0.0.${2 + i}`,
      firstPeer,
      count,
      cohortSize: o.cohortSize,
      stepsPerCohort: o.stepsPerCohort,
      windowMs: o.windowMs,
      connectConcurrency: 128,
    });
    gens.push(gen);
  }
  const connected = await within(Promise.all(gens.map((g) => g.next('connected'))), remaining(deadline), `${o.peers} connections`);
  const failed = connected.reduce((s, c) => s + c.failed, 0);
  if (failed > 0) throw new Error(`${failed} of ${o.peers} connections failed (first: ${connected.find((c) => c.firstError)?.firstError}); check ulimit -n and the ephemeral port range`);
  return gens;
}

async function closeGenerators(gens: readonly GeneratorHandle[], deadline: number): Promise<void> {
  for (const g of gens) g.send({ kind: 'close' });
  await within(Promise.all(gens.map((g) => g.next('closed'))), remaining(deadline), 'load generators to close their connections');
}

async function startEchoServer(o: PhaseOptions, deadline: number): Promise<{ child: ChildProcess; url: string }> {
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

interface AuthorityProcess {
  readonly child: ChildProcess;
  /** The v1 peer endpoint. */
  readonly url: string;
  /** ws:// origin (Task Director clients add their path). */
  readonly origin: string;
  readonly httpUrl: string;
  readonly dir: string;
}

/** Row-level store writes the authority has committed so far (`taskshard_store_rows_written_total`, every table). */
async function rowsWritten(a: AuthorityProcess): Promise<number> {
  const res = await fetch(`${a.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  let rows = 0;
  for (const m of (await res.text()).matchAll(/^taskshard_store_rows_written_total\{[^}]*\} (\d+(?:\.\d+)?)$/gm)) rows += Number(m[1]);
  return rows;
}

/** The real authority, from dist/, on a real SQLite file in a fresh temporary directory. */
async function startAuthority(o: PhaseOptions, deadline: number, helloTimeoutSec: number | null = null): Promise<AuthorityProcess> {
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
  return { child, url: `ws://127.0.0.1:${port}/v1/peer`, origin: `ws://127.0.0.1:${port}`, httpUrl: `http://127.0.0.1:${port}`, dir };
}

async function stopAuthority(a: AuthorityProcess): Promise<void> {
  await stopChild(a.child);
  rmSync(a.dir, { recursive: true, force: true });
}

async function settle(pid: number): Promise<MemoryKb> {
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
    for (const g of gens) g.send({ kind: 'go' });
    const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'the echo closed loop to finish');
    const cpuSec = cpu.stop();
    await closeGenerators(gens, deadline);
    return { load: merge(done.map((d) => d.result), cpuSec), memory: memoryFigures(base, connected, o.peers) };
  } finally {
    await stopChild(server.child);
  }
}

export interface AuthorityLoadResult {
  readonly load: LoadFigures;
  /** Connected, before hello. */
  readonly connectedMemory: MemoryFigures;
  /** After the run, every peer still connected, every cohort in memory. */
  readonly afterRunMemory: MemoryFigures;
  readonly cohorts: number;
  /** Row-level store writes committed from `go` to the last `done`. */
  readonly rowsWritten: number;
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

/**
 * The authority through the full protocol: N peers in cohorts finishing
 * zero-duration steps; with `abuse` > 0, that many extra connections flood it
 * with bad frames (a separate process) for the whole run.
 */
export async function authorityLoadPhase(o: PhaseOptions, abuse = 0, attack: AbuseAttack = 'bad-frames'): Promise<AuthorityLoadResult & { abuse: AbuseFigures | null }> {
  const deadline = o.deadlineMs;
  // Abuse runs keep the default hello deadline: the idle attack is measured against it.
  const authority = await startAuthority(o, deadline, abuse > 0 ? null : 600);
  let abuser: ChildProcess | null = null;
  try {
    const pid = authority.child.pid!;
    const base = await settle(pid);
    const taskDirector = o.protocol === 'task-director';
    const gens = await connectGenerators(o, taskDirector ? generatorModes.taskDirector : generatorModes.protocol, taskDirector ? authority.origin : authority.url, deadline);
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
    o.log(`authority: ${o.peers} ${taskDirector ? 'Task Director clients' : 'peers'} connected; ${cohorts} cohorts x ${o.stepsPerCohort} zero-duration steps`);
    const rowsBefore = await rowsWritten(authority);
    const cpu = cpuMeter([pid]);
    for (const g of gens) g.send({ kind: 'go' });
    const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'every peer to get complete');
    const cpuSec = cpu.stop();
    const rows = (await rowsWritten(authority)) - rowsBefore;
    const abuseFigures = abuser ? await stopAbuser(abuser, abuse, attack) : null;
    abuser = null;
    const after = await settle(pid);
    await closeGenerators(gens, deadline);
    return {
      load: merge(done.map((d) => d.result), cpuSec),
      rowsWritten: rows,
      connectedMemory: memoryFigures(base, connected, o.peers),
      afterRunMemory: memoryFigures(base, after, o.peers),
      cohorts,
      abuse: abuseFigures,
    };
  } finally {
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

export interface IdleResult {
  /** Right after every connection is up (and, for the authority, every peer welcomed). */
  readonly echo: MemoryFigures;
  readonly authority: MemoryFigures;
  /** The same connections after `idleHoldMs` more of idling: what an idle peer costs once the join burst's garbage is collected. */
  readonly echoHeld: MemoryFigures;
  readonly authorityHeld: MemoryFigures;
  /** The authority's V8 heap (its own /metrics), MB: after the joins and after the hold. */
  readonly authorityHeapMb: { readonly base: HeapMb; readonly joined: HeapMb; readonly held: HeapMb };
  readonly holdSec: number;
  readonly authorityAssigned: number;
  /** Error frames by code and connections the authority closed: each one is a peer not measured idle. */
  readonly errors: Readonly<Record<string, number>>;
  readonly unexpectedCloses: number;
}

export interface HeapMb {
  readonly used: number;
  readonly total: number;
}

/** The authority's V8 heap in use and reserved, from the process metrics it exports. */
async function heapOf(a: AuthorityProcess): Promise<HeapMb> {
  const res = await fetch(`${a.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  const pick = (name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in the authority's /metrics`);
    return Math.round(Number(m[1]) / 104857.6) / 10;
  };
  return { used: pick('nodejs_heap_size_used_bytes'), total: pick('nodejs_heap_size_total_bytes') };
}

/** Holds the connections for `ms`, then reads memory again (the generators' connections stay silent). */
async function hold(pid: number, ms: number): Promise<MemoryKb> {
  await new Promise((r) => setTimeout(r, ms));
  return settle(pid);
}

/**
 * `--idle M`: M silent connections to each server; the authority's peers said hello and hold a step or wait.
 * Memory is read right after the connections are up and again after a hold: V8 keeps the garbage of the
 * join burst (10,000 hellos at once) until its memory reducer runs a compacting collection on an idle
 * process, typically within one to two minutes, so the figure after the hold is the cost of an idle peer
 * and the one before it the cost right after a join burst. Both servers are held the same time.
 */
export async function idlePhase(o: PhaseOptions): Promise<IdleResult> {
  const deadline = o.deadlineMs;
  const holdMs = o.idleHoldMs ?? 0;
  const echo = await startEchoServer(o, deadline);
  let echoMemory: MemoryFigures;
  let echoHeld: MemoryFigures;
  try {
    const pid = echo.child.pid!;
    const base = await settle(pid);
    const gens = await connectGenerators(o, generatorModes.idleEcho, echo.url, deadline);
    const loaded = await settle(pid);
    echoMemory = memoryFigures(base, loaded, o.peers);
    o.log(`idle echo baseline: ${o.peers} connections, ${echoMemory.perConnectionKb} KB each; holding ${holdMs / 1000} s`);
    echoHeld = memoryFigures(base, await hold(pid, holdMs), o.peers);
    o.log(`idle echo baseline after the hold: ${echoHeld.perConnectionKb} KB each`);
    await closeGenerators(gens, deadline);
  } finally {
    await stopChild(echo.child);
  }
  const authority = await startAuthority(o, deadline);
  try {
    const pid = authority.child.pid!;
    const base = await settle(pid);
    const baseHeap = await heapOf(authority);
    const gens = await connectGenerators(o, generatorModes.idleProtocol, authority.url, deadline);
    for (const g of gens) g.send({ kind: 'go' });
    const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'every idle peer to be welcomed');
    const loaded = await settle(pid);
    const joinedHeap = await heapOf(authority);
    const authorityMemory = memoryFigures(base, loaded, o.peers);
    o.log(`idle authority: ${o.peers} peers joined, ${authorityMemory.perConnectionKb} KB each (heap ${joinedHeap.used} of ${joinedHeap.total} MB); holding ${holdMs / 1000} s`);
    const authorityHeld = memoryFigures(base, await hold(pid, holdMs), o.peers);
    const heldHeap = await heapOf(authority);
    o.log(`idle authority after the hold: ${authorityHeld.perConnectionKb} KB each (heap ${heldHeap.used} of ${heldHeap.total} MB)`);
    await closeGenerators(gens, deadline);
    const errors: Record<string, number> = {};
    for (const d of done) for (const [code, n] of Object.entries(d.result.errors)) errors[code] = (errors[code] ?? 0) + n;
    return {
      echo: echoMemory,
      authority: authorityMemory,
      echoHeld,
      authorityHeld,
      authorityHeapMb: { base: baseHeap, joined: joinedHeap, held: heldHeap },
      holdSec: holdMs / 1000,
      authorityAssigned: done.reduce((s, d) => s + d.result.rounds, 0),
      errors,
      unexpectedCloses: done.reduce((s, d) => s + d.result.unexpectedCloses, 0),
    };
  } finally {
    await stopAuthority(authority);
  }
}

/**
 * Any server already running (bench/original/ starts the original Python one): Task Director
 * clients in a closed loop against `origin`, CPU summed over `pids` (every process serving).
 */
export async function externalTaskDirectorPhase(o: PhaseOptions, origin: string, pids: readonly number[]): Promise<LoadFigures> {
  const deadline = o.deadlineMs;
  const gens = await connectGenerators(o, generatorModes.taskDirector, origin, deadline);
  const cpu = cpuMeter(pids);
  for (const g of gens) g.send({ kind: 'go' });
  const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'every client to get SCHEMA_COMPLETE');
  const cpuSec = cpu.stop();
  await closeGenerators(gens, deadline);
  return merge(done.map((d) => d.result), cpuSec);
}
