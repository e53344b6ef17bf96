import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cliPath, repoRoot } from './cli.js';
import { tempDir } from './temp-dir.js';

export { freePort } from '../../bench/bench-processes.js';

/**
 * Real processes for the peer's end-to-end tests: the authority (`taskshard
 * server`) and peers (`taskshard peer`), spawned from the built CLI on
 * loopback. Every process started here is registered and killed by
 * `killAll()` (call it in afterEach), step process groups included.
 * Waiting is always on an event (an output line, a log-file line, an exit)
 * with a deadline, never on a fixed sleep.
 */

export class Proc {
  stdout = '';
  stderr = '';
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  private exitedFlag = false;
  private readonly waiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcessWithoutNullStreams,
  ) {
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.stdout += d;
      this.poke();
    });
    child.stderr.on('data', (d: string) => {
      this.stderr += d;
      this.poke();
    });
    child.on('exit', (code, signal) => {
      this.code = code;
      this.signal = signal;
      this.exitedFlag = true;
      this.poke();
    });
  }

  get exited(): boolean {
    return this.exitedFlag;
  }

  /** Resolves when `check()` returns a value (re-checked on every output chunk and on exit). */
  until<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = (): boolean => {
        const value = check();
        if (value !== null && value !== undefined && value !== false) {
          clearTimeout(timer);
          resolve(value);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: timed out waiting for ${what}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr.slice(-4000)}`));
      }, timeoutMs);
      if (attempt()) return;
      const waiter = (): void => {
        if (!attempt()) this.waiters.push(waiter);
      };
      this.waiters.push(waiter);
    });
  }

  /** The first stdout line matching `pattern` (its match), waiting for it. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> {
    return this.until(`a line matching ${pattern}`, () => this.stdout.match(pattern), timeoutMs);
  }

  /** The exit code (null when killed by a signal). */
  async exit(timeoutMs = 20_000): Promise<number | null> {
    await this.until('exit', () => this.exitedFlag, timeoutMs);
    return this.code;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exitedFlag) this.child.kill(signal);
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

const started: Proc[] = [];
const stepGroups = new Set<number>();

/** Runs `node [nodeArgs] dist/cli/main.js args...`. */
export function spawnCli(name: string, args: string[], env: NodeJS.ProcessEnv, cwd: string = repoRoot, nodeArgs: readonly string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeArgs, cliPath, ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  const proc = new Proc(name, child);
  started.push(proc);
  return proc;
}

/** Kills every process these helpers started (and the step process groups they logged). */
export async function killAll(): Promise<void> {
  for (const pgid of stepGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  stepGroups.clear();
  const procs = started.splice(0);
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exit(5_000).catch(() => null)));
}

export interface Authority {
  readonly proc: Proc;
  readonly port: number;
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string;
  readonly httpUrl: string;
}

/** Starts `taskshard server` on loopback and waits for its "listening" line. */
export async function startAuthority(options: { db: string; port?: number; leaseGraceSec?: number; env?: NodeJS.ProcessEnv; args?: readonly string[]; nodeArgs?: readonly string[] }): Promise<Authority> {
  const args = ['server', '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--db', options.db, '--log-level', 'info'];
  if (options.leaseGraceSec !== undefined) args.push('--lease-grace', String(options.leaseGraceSec));
  args.push(...(options.args ?? []));
  const env = { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '', ...options.env };
  const proc = spawnCli('server', args, env, repoRoot, options.nodeArgs);
  const match = await proc.until('"taskshard authority listening"', () => /"url":"http:\/\/127\.0\.0\.1:(\d+)"[^\n]*"msg":"taskshard authority listening"/.exec(proc.stdout));
  const port = Number(match[1]);
  return { proc, port, wsUrl: `ws://127.0.0.1:${port}`, httpUrl: `http://127.0.0.1:${port}` };
}

/**
 * A step script for peers: logs `start`, waits while the gate file is
 * missing, fails (exit 3, with a message on stderr) for steps listed in
 * FAIL_STEPS, else logs `done`. Each log line: `event phase step peer pid argStep argTarget`.
 */
export function writeStepScript(path: string, logFile: string): void {
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `log='${logFile}'`,
      'echo "start $TASKSHARD_PHASE $TASKSHARD_STEP $PEER_NAME $$ $1 $2 $TASKSHARD_TARGET" >> "$log"',
      'echo "building $1 ($2) on $PEER_NAME"',
      'if [ -n "$GATE" ]; then while [ ! -e "$GATE" ]; do sleep 0.02; done; fi',
      'case " $FAIL_STEPS " in *" $1 "*) echo "boom: $1 is broken" >&2; echo "fail $TASKSHARD_PHASE $1 $PEER_NAME" >> "$log"; exit 3;; esac',
      'echo "done $TASKSHARD_PHASE $TASKSHARD_STEP $PEER_NAME $$" >> "$log"',
      '',
    ].join('\n'),
  );
}

export interface LogLine {
  readonly event: 'start' | 'done' | 'fail';
  readonly phase: string;
  readonly step: string;
  readonly peer: string;
  readonly pid: number | null;
  readonly rest: readonly string[];
}

/** The step log, parsed; step process groups seen in it are registered for killAll(). */
export function readStepLog(logFile: string): LogLine[] {
  if (!existsSync(logFile)) return [];
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.map((l) => {
    const [event, phase, step, peer, pid, ...rest] = l.split(' ');
    const pidNumber = pid === undefined || !/^\d+$/.test(pid) ? null : Number(pid);
    if (event === 'start' && pidNumber !== null) stepGroups.add(pidNumber);
    return { event: event as LogLine['event'], phase: phase!, step: step!, peer: peer!, pid: pidNumber, rest };
  });
}

/** Polls `check` every 20 ms until it returns a value, for conditions no process announces (files, pids). */
export async function waitUntil<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 15_000, describe: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `check(lines)` holds for the step log. */
export function untilLog<T>(logFile: string, what: string, check: (lines: LogLine[]) => T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
  return waitUntil(what, () => check(readStepLog(logFile)), timeoutMs, () => `; log:\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : '(none)'}`);
}

/** Counts of `event` lines per step for one phase. */
export function countBy(lines: LogLine[], event: LogLine['event'], phase = 'step'): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of lines) if (l.event === event && l.phase === phase) counts[l.step] = (counts[l.step] ?? 0) + 1;
  return counts;
}

export interface PeerSpec {
  readonly name: string;
  readonly server: string;
  readonly schema: string;
  readonly script: string;
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory (default the repository root, a git checkout: its HEAD becomes the base sha). */
  readonly cwd?: string;
}

/** Starts `taskshard peer` whose COMMAND is the step script with `{step} {target}`. */
export function startPeer(spec: PeerSpec): Proc {
  const args = ['peer', '--server', spec.server, '--schema', spec.schema, '--cache-id', 'e2e-cache', '--peer-id', spec.name, '--repo', 'https://example.com/acme/mono.git', '--base-ref', 'main', ...(spec.args ?? []), '--', '/bin/sh', spec.script, '{step}', '{target}'];
  const env: NodeJS.ProcessEnv = { ...withoutCiEnv(process.env), TASKSHARD_TOKEN: '', PEER_NAME: spec.name, ...spec.env };
  return spawnCli(spec.name, args, env, spec.cwd);
}

/** The environment without anything that would make the peer think it runs in a CI system. */
export function withoutCiEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^(GITHUB_|GITLAB_|CI_|BUILDKITE|CIRCLE|JENKINS_|GERRIT_|BUILD_TAG$)/.test(k)) continue;
    out[k] = v;
  }
  return out;
}

/** A schema file of `count` independent steps s1..sN. */
export function writeFlatSchema(path: string, count: number, id = 'e2e'): void {
  const steps = Array.from({ length: count }, (_, i) => ({ id: `s${i + 1}`, target: `//s${i + 1}/...` }));
  writeFileSync(path, JSON.stringify({ id, universe: '//...', steps }, null, 2));
}

/** A test's working files: the step script (logging to `log`), a schema, and a gate file for `GATE`. */
export interface PeerWorkspace {
  readonly dir: ReturnType<typeof tempDir>;
  readonly log: string;
  readonly script: string;
  readonly schema: string;
  readonly gate: string;
}

/** A fresh temp dir with the logging step script and a flat schema of `steps` steps (call in beforeEach). */
export function newPeerWorkspace(prefix: string, steps = 6): PeerWorkspace {
  const dir = tempDir(prefix);
  const ws = { dir, log: dir.file('steps.log'), script: dir.file('step.sh'), schema: dir.file('schema.json'), gate: dir.file('gate') };
  writeStepScript(ws.script, ws.log);
  writeFlatSchema(ws.schema, steps);
  return ws;
}

/** Kills every process the test started and removes its files (call in afterEach). */
export async function endPeerWorkspace(ws: PeerWorkspace): Promise<void> {
  await killAll();
  ws.dir.remove();
}
