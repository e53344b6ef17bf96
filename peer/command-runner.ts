import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { limits } from '../shared/limits.js';
import { substituteArgv } from './argv-template.js';
import { OutputTail } from './output-tail.js';
import type { StepContext, StepOutcome, StepRunner } from './step-runner.js';

/** How to run the user's COMMAND for each step. */
export interface CommandRunnerOptions {
  readonly command: string;
  /** Arguments; `{target}` and `{step}` are substituted in each. */
  readonly args: readonly string[];
  /** Base environment of the child (default `process.env`); TASKSHARD_TOKEN is never passed on. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Where the child's output goes (default the peer's own stdout and stderr, i.e. the CI log). */
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  /** After an abort: how long the process group gets between SIGTERM and SIGKILL. Default 5000 ms. */
  readonly killGraceMs?: number;
  /** Aborting it SIGKILLs the running step's process group at once (a second Ctrl-C, a closed stdout). */
  readonly hardStop?: AbortSignal;
  /** Sees every chunk of output as it passes (the CLI keeps the build tool's summary line of the universe build). */
  readonly onOutput?: (ctx: StepContext, stream: 'stdout' | 'stderr', chunk: string) => void;
}

/** After the child exits, how long its output pipes may stay open (held by a background grandchild). */
const pipeDrainMs = 1_000;

/**
 * A runner that spawns COMMAND with substituted ARGs, no shell, in its own
 * process group (`detached`), with TASKSHARD_STEP, TASKSHARD_TARGET and
 * TASKSHARD_PHASE set. Output is streamed through and its last 4096
 * characters kept for the log tail. An abort kills the whole group: SIGTERM,
 * then SIGKILL after `killGraceMs` (or as soon as the leader has exited).
 */
export function createCommandRunner(options: CommandRunnerOptions): StepRunner {
  const killGraceMs = options.killGraceMs ?? 5_000;
  return (ctx) =>
    new Promise<StepOutcome>((resolve) => {
      if (ctx.signal.aborted) {
        resolve({ ok: false, exitCode: null, logTail: 'taskshard: aborted before it started' });
        return;
      }
      const env: Record<string, string | undefined> = { ...(options.env ?? process.env), TASKSHARD_STEP: ctx.stepId, TASKSHARD_TARGET: ctx.target, TASKSHARD_PHASE: ctx.phase };
      delete env.TASKSHARD_TOKEN;
      const argv = substituteArgv(options.args, { target: ctx.target, step: ctx.stepId });
      const tail = new OutputTail(limits.maxLogTailChars);
      const out = options.stdout ?? process.stdout;
      const err = options.stderr ?? process.stderr;

      const child = spawn(options.command, argv, { cwd: options.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let settled = false;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let killTimer: NodeJS.Timeout | null = null;
      let drainTimer: NodeJS.Timeout | null = null;

      const killGroup = (signal: NodeJS.Signals): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, signal);
        } catch {
          // the group is gone already
        }
      };
      const onAbort = (): void => {
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), killGraceMs);
      };
      const onHardStop = (): void => killGroup('SIGKILL');
      const settle = (outcome: StepOutcome): void => {
        if (settled) return;
        settled = true;
        ctx.signal.removeEventListener('abort', onAbort);
        options.hardStop?.removeEventListener('abort', onHardStop);
        if (killTimer) clearTimeout(killTimer);
        if (drainTimer) clearTimeout(drainTimer);
        // A background grandchild may hold the pipes open; stop reading so the peer can exit.
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(outcome);
      };
      const finish = (): void => {
        if (exit === null) return;
        if (ctx.signal.aborted || options.hardStop?.aborted) killGroup('SIGKILL'); // stragglers of an aborted step
        if (exit.signal) tail.push(`\ntaskshard: ${options.command} was killed by ${exit.signal}\n`);
        const ok = exit.code === 0 && !ctx.signal.aborted;
        settle(ok ? { ok, exitCode: 0 } : { ok, exitCode: exit.code, logTail: tail.text() });
      };

      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        out.write(chunk);
        tail.push(chunk);
        options.onOutput?.(ctx, 'stdout', chunk);
      });
      child.stderr.on('data', (chunk: string) => {
        err.write(chunk);
        tail.push(chunk);
        options.onOutput?.(ctx, 'stderr', chunk);
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        // The step never ran: say so on the first line, and let the peer stop taking steps.
        const code = e.code ?? 'error';
        settle({ ok: false, exitCode: null, startError: code, logTail: `taskshard: ${options.command} could not start (${code}): ${e.message}` });
      });
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        drainTimer = setTimeout(finish, pipeDrainMs);
      });
      child.once('close', finish);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (options.hardStop?.aborted) onHardStop();
      else options.hardStop?.addEventListener('abort', onHardStop, { once: true });
    });
}
