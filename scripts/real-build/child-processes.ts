import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * Process plumbing for the real-build runs (demo and e2e tests): every process is spawned in its
 * own process group, its output is kept, and `stopAll()` ends exactly the groups started here, by
 * pid, waiting for each to exit.
 */

export class RunningProcess {
  output = '';
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    onLine?: (line: string) => void,
  ) {
    let partial = '';
    const take = (chunk: Buffer): void => {
      const text = chunk.toString();
      this.output += text;
      if (!onLine) return;
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.code = code;
        this.signal = signal;
        if (onLine && partial) onLine(partial);
        resolve();
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid (did it fail to spawn?)`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for the exit; rejects after `timeoutMs` naming the process and its last output. */
  async exit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not finish within ${timeoutMs / 1000} s; last output:\n${this.output.slice(-3000)}`)), timeoutMs);
    });
    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.code;
  }

  /** Ends the process group (SIGTERM, then SIGKILL after `graceMs`) and waits for the exit. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return this.exited;
    signalGroup(this.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // The leader is gone; anything it left in its group goes too.
    signalGroup(this.pid, 'SIGKILL');
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

const started = new Set<RunningProcess>();

export interface StartOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly onLine?: (line: string) => void;
}

/** Spawns `command args` in its own process group; `stopAll()` will end it. */
export function startProcess(name: string, command: string, args: readonly string[], options: StartOptions): RunningProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const proc = new RunningProcess(name, child, options.onLine);
  started.add(proc);
  child.once('error', (err) => {
    proc.output += `\nspawn failed: ${err.message}\n`;
  });
  return proc;
}

/** Runs `command args` to completion and returns its exit code and output. */
export async function runToEnd(name: string, command: string, args: readonly string[], options: StartOptions & { timeoutMs: number }): Promise<RunningProcess> {
  const proc = startProcess(name, command, args, options);
  try {
    await proc.exit(options.timeoutMs);
  } finally {
    started.delete(proc);
    if (proc.running) await proc.stop();
  }
  return proc;
}

/** Stops every process started here that is still running (in reverse start order). */
export async function stopAll(): Promise<void> {
  for (const proc of [...started].reverse()) {
    await proc.stop();
    started.delete(proc);
  }
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

/** Polls `url` until it answers (any HTTP status), the process exits, or `timeoutMs` passes. */
export async function waitForHttp(url: string, proc: RunningProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running) throw new Error(`${proc.name} exited with ${proc.code ?? proc.signal} before answering on ${url}:\n${proc.output}`);
    const answered = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      async (r) => {
        await r.arrayBuffer();
        return true;
      },
      () => false,
    );
    if (answered) return;
    if (Date.now() > deadline) throw new Error(`${proc.name} did not answer on ${url} within ${timeoutMs / 1000} s:\n${proc.output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
