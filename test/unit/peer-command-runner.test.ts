import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createCommandRunner } from '../../peer/command-runner.js';
import type { StepContext } from '../../peer/step-runner.js';
import { runTimed } from '../../peer/step-runner.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The COMMAND runner with real `sh` processes: argv, env, output, exit codes, process-group kill. */

let dir: ReturnType<typeof tempDir> | null = null;
const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  dir?.remove();
  dir = null;
});

function sinks(): { out: PassThrough; err: PassThrough; text: () => { out: string; err: string } } {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  return { out, err, text: () => ({ out: o, err: e }) };
}

function ctx(over: Partial<StepContext> = {}): StepContext {
  return { stepId: 'common', target: '//common/...', phase: 'step', signal: new AbortController().signal, ...over };
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('createCommandRunner', () => {
  it('substitutes argv without a shell, sets the TASKSHARD_* env, streams output, drops the token', async () => {
    const s = sinks();
    const runner = createCommandRunner({
      command: '/bin/sh',
      args: ['-c', 'printf "%s|" "$@"; echo "$TASKSHARD_STEP $TASKSHARD_TARGET $TASKSHARD_PHASE token=${TASKSHARD_TOKEN:-none}"; echo oops >&2', 'sh', '{target}', 'x{step}x', '$(echo no)'],
      env: { PATH: process.env.PATH, TASKSHARD_TOKEN: 'secret-secret-secret' },
      stdout: s.out,
      stderr: s.err,
    });
    const outcome = await runner(ctx({ target: '//a b/...; rm -rf /' }));
    expect(outcome).toEqual({ ok: true, exitCode: 0 });
    expect(s.text().out).toBe('//a b/...; rm -rf /|xcommonx|$(echo no)|common //a b/...; rm -rf / step token=none\n');
    expect(s.text().err).toBe('oops\n');
  });

  it('a failing command reports its exit code and the tail of its combined output, capped at 4096 characters', async () => {
    const s = sinks();
    const runner = createCommandRunner({ command: '/bin/sh', args: ['-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; echo "the error" >&2; exit 7'], stdout: s.out, stderr: s.err });
    const outcome = await runner(ctx());
    expect(outcome.ok).toBe(false);
    expect(outcome.exitCode).toBe(7);
    expect(outcome.logTail!.length).toBeLessThanOrEqual(4096);
    expect(outcome.logTail!.endsWith('line 1999\nthe error\n')).toBe(true);
  });

  it('a command that cannot start says so on its first line and carries the start error, not a crash', async () => {
    const runner = createCommandRunner({ command: '/no/such/taskshard-binary', args: [] });
    const run = await runTimed(runner, ctx(), () => performance.now());
    expect(run).toMatchObject({ ok: false, exitCode: null, aborted: false, startError: 'ENOENT' });
    expect(run.logTail!.split('\n')[0]).toBe('taskshard: /no/such/taskshard-binary could not start (ENOENT): spawn /no/such/taskshard-binary ENOENT');
  });

  it('abort kills the whole process group, including a grandchild that ignores SIGTERM', async () => {
    dir = tempDir('taskshard-runner-');
    const pidFile = dir.file('pids');
    const s = sinks();
    const runner = createCommandRunner({
      command: '/bin/sh',
      // The grandchild ignores SIGTERM, so only the SIGKILL that follows can stop it.
      args: ['-c', `sh -c 'trap "" TERM; while :; do sleep 0.05; done' & echo "$$ $!" > '${pidFile}'; echo started; wait`],
      stdout: s.out,
      stderr: s.err,
      killGraceMs: 200,
    });
    const controller = new AbortController();
    const done = runner(ctx({ signal: controller.signal }));
    const pids = await new Promise<number[]>((resolve) => {
      s.out.on('data', () => resolve(readFileSync(pidFile, 'utf8').trim().split(' ').map(Number)));
    });
    leftovers.push(...pids);
    expect(pids.every(alive)).toBe(true);
    controller.abort();
    const outcome = await done;
    expect(outcome.ok).toBe(false);
    expect(outcome.logTail).toContain('was killed by SIGTERM');
    const deadline = Date.now() + 5_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(pids.filter(alive)).toEqual([]);
  });

  it('does not wait for a background process that keeps the output pipe open after a normal exit', async () => {
    const s = sinks();
    const runner = createCommandRunner({ command: '/bin/sh', args: ['-c', 'sleep 30 & echo $! ; exit 0'], stdout: s.out, stderr: s.err });
    const started = performance.now();
    const outcome = await runner(ctx());
    leftovers.push(Number(s.text().out.trim()));
    expect(outcome).toEqual({ ok: true, exitCode: 0 });
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('runTimed', () => {
  it('turns a throwing or malformed runner into a failed run and clamps what it reports', async () => {
    let t = 0;
    const now = () => (t += 1000);
    const thrown = await runTimed(async () => {
      throw new Error('kaput');
    }, ctx(), now);
    expect(thrown).toMatchObject({ ok: false, exitCode: null, logTail: 'taskshard: the step runner threw: kaput', durationMs: 1000, aborted: false });
    const malformed = await runTimed(async () => 'yes' as never, ctx(), now);
    expect(malformed).toMatchObject({ ok: false, logTail: 'taskshard: the step runner returned no { ok, exitCode }' });
    const clamped = await runTimed(async () => ({ ok: false, exitCode: 99999, logTail: 'x'.repeat(5000) }), ctx(), now);
    expect(clamped.exitCode).toBe(1024);
    expect(clamped.logTail).toHaveLength(4096);
  });
});
