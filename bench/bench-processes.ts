import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { ChildMessage, ParentMessage } from './bench-ipc.js';

/**
 * Process plumbing for the authority benchmark: free ports, file-descriptor
 * limits, spawning children with a raised `ulimit -n`, reading a process's
 * memory from /proc, and talking to load generators.
 */

const children = new Set<ChildProcess>();

/** Every child still running, so a failed run can end them (only ones this process started). */
export function killAllChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface FdLimits {
  readonly soft: number;
  readonly hard: number;
}

/** `ulimit -n` soft and hard limits as this process's children inherit them. */
export function fdLimits(): FdLimits {
  const out = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
  const [soft, hard] = out.stdout.trim().split('\n').map((v) => (v.trim() === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v)));
  if (!Number.isFinite(soft) || !Number.isFinite(hard)) throw new Error(`cannot read ulimit -n (got ${JSON.stringify(out.stdout)})`);
  return { soft: soft!, hard: hard! };
}

/** Size of the ephemeral port range (per source address). */
export function ephemeralPorts(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return hi! - lo! + 1;
  } catch {
    return 28_232; // Linux default 32768..60999
  }
}

/**
 * Spawns `node args...` through `sh` so its soft `ulimit -n` can be raised to
 * `nofile` (never above the hard limit; the caller checks). `exec` keeps the
 * pid and any IPC channel.
 */
export function spawnNode(args: readonly string[], options: { nofile: number; ipc?: boolean; cwd: string; stdoutTo?: 'parent' | 'stderr' }): ChildProcess {
  const child = spawn('sh', ['-c', `ulimit -n ${options.nofile} && exec "$0" "$@"`, process.execPath, ...args], {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'inherit', ...(options.ipc ? (['ipc'] as const) : [])],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  // Our stdout carries only the one JSON line: children's output goes to stderr unless the caller reads it.
  if (options.stdoutTo !== 'parent') child.stdout!.pipe(process.stderr, { end: false });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface MemoryKb {
  /** Resident set size now. */
  readonly rssKb: number;
  /** Peak resident set size so far. */
  readonly hwmKb: number;
}

export function readMemory(pid: number): MemoryKb {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

let clockTicksPerSec: number | null = null;

/** CPU seconds (user + system, every thread) a process has used so far, from /proc/<pid>/stat. */
export function readCpuSec(pid: number): number {
  if (clockTicksPerSec === null) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const ticks = Number(out.stdout.trim());
    if (!Number.isInteger(ticks) || ticks <= 0) throw new Error(`cannot read the clock tick rate (getconf CLK_TCK said ${JSON.stringify(out.stdout)})`);
    clockTicksPerSec = ticks;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, inside parentheses): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot read utime/stime from /proc/${pid}/stat`);
  return (utime + stime) / clockTicksPerSec;
}

/** CPU seconds used by a set of processes between `start()` and `stop()` (the servers measured in a phase). */
/**
 * A process's main thread from the scheduler's side (Linux `/proc/<pid>/task/<pid>/schedstat`):
 * seconds on a CPU and seconds runnable but waiting for one; null where the file is not readable.
 * A V8 profile samples the main thread on wall time, so a sample can fall while the thread waits
 * for a CPU (say, after a socket write woke the reader on a busy machine); these two tell how much.
 */
export function mainThreadSchedSec(pid: number): { readonly runSec: number; readonly waitSec: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1');
  } catch {
    return null;
  }
  const [run, wait] = text.split(' ').map(Number);
  if (!Number.isFinite(run) || !Number.isFinite(wait)) throw new Error(`cannot read /proc/${pid}/task/${pid}/schedstat (got ${JSON.stringify(text)})`);
  return { runSec: run! / 1e9, waitSec: wait! / 1e9 };
}

export function cpuMeter(pids: readonly number[]): { stop(): number } {
  const before = pids.map(readCpuSec);
  return { stop: () => pids.reduce((sum, pid, i) => sum + readCpuSec(pid) - before[i]!, 0) };
}

/** Resolves when the child exits; kills it with SIGKILL after `timeoutMs`. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}

/** Rejects after `ms` with a message naming what did not happen. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e as Error)),
    );
  });
}

/** A load-generator child and a queue of the messages it sent. */
export class GeneratorHandle {
  private readonly inbox: ChildMessage[] = [];
  private waiter: { readonly kind: ChildMessage['kind']; readonly take: (m: ChildMessage) => void; readonly fail: (err: Error) => void } | null = null;
  private exited: string | null = null;

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: ChildMessage) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.take(m);
      } else this.inbox.push(m);
    });
    // One listener for the process's life (a kept generator serves many passes, each waiting on several messages).
    child.once('exit', (code, signal) => {
      this.exited = `load generator ${child.pid} exited (${signal ?? `code ${code}`})`;
      const w = this.waiter;
      this.waiter = null;
      if (w === null) return;
      if (w.kind === 'closed') w.take({ kind: 'closed' });
      else w.fail(new Error(this.exited));
    });
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  get hasExited(): boolean {
    return this.exited !== null || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Ends the process (its pass closed); a no-op once it exited. */
  exit(): void {
    if (!this.hasExited && this.child.connected) this.child.send({ kind: 'exit' } satisfies ParentMessage);
  }

  /** The next message of the given kind (a `fatal` or an exit fails it). */
  next<K extends ChildMessage['kind']>(kind: K): Promise<Extract<ChildMessage, { kind: K }>> {
    return new Promise((resolve, reject) => {
      const take = (m: ChildMessage): void => {
        if (m.kind === 'fatal') reject(new Error(`load generator failed: ${m.message}`));
        else if (m.kind !== kind) reject(new Error(`load generator sent ${m.kind}, expected ${kind}`));
        else resolve(m as Extract<ChildMessage, { kind: K }>);
      };
      const queued = this.inbox.shift();
      if (queued) return take(queued);
      if (this.exited) {
        if (kind === 'closed') return resolve({ kind: 'closed' } as Extract<ChildMessage, { kind: K }>);
        return reject(new Error(this.exited));
      }
      this.waiter = { kind, take, fail: reject };
    });
  }
}
