import { writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPeer, type StepContext } from '../../peer/index.js';
import { runCli } from '../helpers/cli.js';
import { killAll, startAuthority, withoutCiEnv, writeFlatSchema } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';

/** `runPeer` as a library against a real authority process, and the CLI's exit-2 paths. */

let dir: ReturnType<typeof tempDir>;
let schema: string;

beforeEach(() => {
  dir = tempDir('taskshard-peer-lib-');
  schema = dir.file('schema.json');
  writeFlatSchema(schema, 4);
});

afterEach(async () => {
  await killAll();
  dir.remove();
});

function quiet(): { stdout: PassThrough; stderr: PassThrough; text: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let all = '';
  stdout.on('data', (d: Buffer) => (all += d.toString()));
  stderr.on('data', (d: Buffer) => (all += d.toString()));
  return { stdout, stderr, text: () => all };
}

const common = { cacheId: 'lib-cache', repo: 'https://example.com/acme/mono.git', baseRef: 'main', env: withoutCiEnv(process.env) };

describe('runPeer (library)', () => {
  it('two in-process peers with callback runners share the steps and build the universe each', async () => {
    const auth = await startAuthority({ db: dir.file('a.db') });
    const calls: { peer: string; ctx: Omit<StepContext, 'signal'> }[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let joined = 0;
    const peer = (peerId: string) => {
      const out = quiet();
      out.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('joined cohort') && ++joined === 2) release();
      });
      return runPeer({
        ...common,
        server: auth.wsUrl,
        schema,
        peerId,
        stdout: out.stdout,
        stderr: out.stderr,
        runner: async ({ signal, ...ctx }) => {
          calls.push({ peer: peerId, ctx });
          await gate;
          return signal.aborted ? { ok: false, exitCode: null } : { ok: true, exitCode: 0 };
        },
      });
    };
    const [a, b] = await Promise.all([peer('lib-a'), peer('lib-b')]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    expect(a.mode).toBe('shared');
    expect(a.cohortId).toBe(b.cohortId);
    expect([...a.builtHere, ...b.builtHere].sort()).toEqual(['s1', 's2', 's3', 's4']);
    expect(a.builtByOthers.map((x) => x.stepId).sort()).toEqual([...b.builtHere].sort());
    expect(a.universe).toMatchObject({ ok: true, exitCode: 0 });
    // Runner time from the authority's complete: own build time, building alone, join to complete, saved.
    for (const r of [a, b]) {
      expect(r.runner).not.toBeNull();
      expect(r.runner!.savedSec).toBeCloseTo(r.runner!.aloneSec - r.runner!.spentSec, 3);
      expect(r.runner!.builtSec + r.savedSec).toBeCloseTo(r.runner!.aloneSec, 3);
      expect(r.runner!.spentSec).toBeGreaterThan(0);
    }
    const universeCalls = calls.filter((c) => c.ctx.phase === 'universe');
    expect(universeCalls.map((c) => c.ctx)).toEqual([
      { stepId: 'universe', target: '//...', phase: 'universe' },
      { stepId: 'universe', target: '//...', phase: 'universe' },
    ]);
    expect(calls.filter((c) => c.ctx.phase === 'step').map((c) => c.ctx.target).sort()).toEqual(['//s1/...', '//s2/...', '//s3/...', '//s4/...']);
  });

  it('aborting the signal stops the running step and resolves with exit 1', async () => {
    const auth = await startAuthority({ db: dir.file('b.db') });
    const stop = new AbortController();
    const out = quiet();
    let stepSignal: AbortSignal | null = null;
    const result = await runPeer({
      ...common,
      server: auth.wsUrl,
      schema,
      peerId: 'lib-stop',
      stdout: out.stdout,
      stderr: out.stderr,
      signal: stop.signal,
      runner: ({ signal }) => {
        stepSignal = signal;
        const stopped = new Promise<{ ok: boolean; exitCode: null }>((resolve) => signal.addEventListener('abort', () => resolve({ ok: false, exitCode: null }), { once: true }));
        stop.abort(); // e.g. the CI job is cancelled while the step runs
        return stopped;
      },
    });
    expect(result.exitCode).toBe(1);
    expect(stepSignal!.aborted).toBe(true);
    expect(out.text()).toContain('exit 1: interrupted');
  });

  it('returns exit 2 with every problem for bad options, without touching the network', async () => {
    const out = quiet();
    const result = await runPeer({ server: 'nope', schema: { universe: '//u', steps: [] }, cacheId: '', runner: 'x' as never, stdout: out.stdout, stderr: out.stderr });
    expect(result.exitCode).toBe(2);
    expect(result.problems).toEqual(['server: must be a URL such as ws://taskshard.example:8080, got "nope"', 'cacheId: must not be empty', 'runner: must be a function (ctx) => Promise<{ ok, exitCode, logTail? }>']);
    const schemaProblem = await runPeer({ ...common, server: 'ws://127.0.0.1:1', schema: { universe: '//u', steps: [] }, runner: async () => ({ ok: true, exitCode: 0 }), stdout: out.stdout, stderr: out.stderr });
    expect(schemaProblem.problems).toEqual(['schema.id: is required (no file name to default to) [required]', 'schema.steps: must list at least one step [min]']);
  });
});

describe('taskshard peer: usage and schema errors exit 2', () => {
  const env = { ...withoutCiEnv(process.env), TASKSHARD_TOKEN: '' };

  it('names the flag, or the file:line:column of the schema problem', () => {
    const bad = dir.file('bad.json');
    writeFileSync(bad, JSON.stringify({ universe: '//u', steps: [{ id: 'common', target: '//c' }, { id: 'b', target: '//b', needs: ['comon'] }] }, null, 2));
    const args = ['--server', 'ws://127.0.0.1:1', '--cache-id', 'c', '--repo', 'r', '--base-ref', 'main'];
    const schemaError = runCli(['peer', ...args, '--schema', bad, '--', 'true'], { env });
    expect(schemaError.code).toBe(2);
    expect(schemaError.stderr).toBe(`taskshard peer: ${bad}:12:9: steps[1].needs[0]: unknown step "comon" (did you mean "common"?) [unknown-need]\n`);
    expect(schemaError.stdout).toBe('');

    const badSha = runCli(['peer', ...args, '--schema', schema, '--base-sha', 'zzz', '--', 'true'], { env });
    expect(badSha.code).toBe(2);
    expect(badSha.stderr).toContain('taskshard peer: --base-sha: must be a hex commit sha');

    const missing = runCli(['peer', '--server', 'ws://127.0.0.1:1', '--schema', schema, '--', 'true'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('taskshard peer: missing required option: --cache-id (or TASKSHARD_CACHE_ID)');

    // Outside CI and outside a git repository nothing names the repo or the base ref.
    const undetectable = runCli(['peer', '--server', 'ws://127.0.0.1:1', '--schema', schema, '--cache-id', 'c', '--', 'true'], { env, cwd: dir.path });
    expect(undetectable.code).toBe(2);
    expect(undetectable.stderr).toContain('taskshard peer: --repo: not given, and neither the environment (no CI system recognized) nor git');
    expect(undetectable.stderr).toContain('taskshard peer: --base-ref: not given');
  });
});
