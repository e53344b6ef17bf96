import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTimed, type StepRunner } from '../../peer/step-runner.js';
import { createVerifier, parseVerifySpec, splitCommandLine, withVerification } from '../../peer/verify.js';

const dir = mkdtempSync(join(tmpdir(), 'taskshard-verify-test-'));
const evidenceFile = join(dir, 'record.json');
const present = new Set<string>();
const seen: { method: string; url: string; auth: string | undefined }[] = [];
let server: Server;
let base = '';

/** A real HTTP cache on 127.0.0.1: 200 for the paths in `present`, 404 otherwise. */
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
    res.statusCode = present.has((req.url ?? '').split('?')[0]!) ? 200 : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const ok: StepRunner = async () => ({ ok: true, exitCode: 0 });
const ctx = (phase: 'step' | 'universe' = 'step') => ({ stepId: 'core', target: '//libs/core/...', phase, signal: new AbortController().signal });
const sha = (c: string): string => c.repeat(64);

function bazelLog(...hashes: string[]): string {
  return hashes
    .map((h, i) => JSON.stringify({ mnemonic: 'Genrule', runner: 'local', remoteCacheable: true, actualOutputs: [{ path: `bazel-out/k8-fastbuild/bin/libs/core/out${i}`, digest: { hash: h, sizeBytes: '10' } }] }))
    .join('\n');
}

describe('--verify parsing', () => {
  it('splits a command line like a shell, without running one', () => {
    expect(splitCommandLine(`check-cache --step {step} 'a b' "c \\"d\\"" e\\ f`)).toEqual(['check-cache', '--step', '{step}', 'a b', 'c "d"', 'e f']);
    expect(() => splitCommandLine(`sh -c 'exit 1`)).toThrow(/unterminated ' quote/);
  });

  it('knows the built-ins and refuses unknown ones', () => {
    expect(parseVerifySpec('builtin:bazel')).toEqual({ kind: 'builtin', tool: 'bazel' });
    expect(parseVerifySpec('builtin:turbo')).toEqual({ kind: 'builtin', tool: 'turbo' });
    expect(() => parseVerifySpec('builtin:make')).toThrow(/unknown built-in verifier "builtin:make" \(expected builtin:bazel or builtin:turbo\)/);
    expect(() => parseVerifySpec('  ')).toThrow(/must name a command/);
  });
});

describe('a verify command', () => {
  it('a non-zero exit turns a built step into "not published", with the reason and the verifier output', async () => {
    const runner = withVerification(ok, createVerifier(parseVerifySpec(`sh -c 'echo missing $TASKSHARD_STEP {target} >&2; exit 3'`)), evidenceFile);
    const run = await runTimed(runner, ctx(), () => 0);
    expect(run.ok).toBe(false);
    expect(run.exitCode).toBe(3);
    expect(run.unpublished).toMatch(/^built, but --verify says it is not in the remote cache \(exit 3\): missing core \/\/libs\/core\/\.\.\.$/);
  });

  it('exit 0 keeps the success; failed steps and the universe are not verified', async () => {
    const verifier = createVerifier(parseVerifySpec('true'));
    expect(await runTimed(withVerification(ok, verifier, evidenceFile), ctx(), () => 0)).toMatchObject({ ok: true, unpublished: null });
    const never = createVerifier(parseVerifySpec('false'));
    expect(await runTimed(withVerification(ok, never, evidenceFile), ctx('universe'), () => 0)).toMatchObject({ ok: true, unpublished: null });
    const failing: StepRunner = async () => ({ ok: false, exitCode: 2 });
    expect(await runTimed(withVerification(failing, never, evidenceFile), ctx(), () => 0)).toMatchObject({ ok: false, exitCode: 2, unpublished: null });
  });
});

describe('builtin:bazel', () => {
  it("passes when every output in the step's execution log is in the HTTP cache's CAS, and names the missing ones otherwise", async () => {
    present.add(`/cas/${sha('a')}`);
    const verifier = createVerifier({ kind: 'builtin', tool: 'bazel' }, { env: { BAZEL_REMOTE_CACHE: base } });
    const writing = (log: string): StepRunner => async () => {
      writeFileSync(evidenceFile, log);
      return { ok: true, exitCode: 0 };
    };
    expect(await runTimed(withVerification(writing(bazelLog(sha('a'))), verifier, evidenceFile), ctx(), () => 0)).toMatchObject({ ok: true });
    const run = await runTimed(withVerification(writing(bazelLog(sha('a'), sha('b'))), verifier, evidenceFile), ctx(), () => 0);
    expect(run.unpublished).toContain(`1 of 2 outputs are not in ${base}: bazel-out/k8-fastbuild/bin/libs/core/out1`);
    expect(seen.filter((s) => s.url === `/cas/${sha('b')}`).map((s) => s.method)).toEqual(['HEAD']);
  });

  it('a step that wrote no log, or no cache configured, is not published (exit 2, saying what to set)', async () => {
    const verifier = createVerifier({ kind: 'builtin', tool: 'bazel' }, { env: { BAZEL_REMOTE_CACHE: base } });
    expect((await runTimed(withVerification(ok, verifier, evidenceFile), ctx(), () => 0)).unpublished).toMatch(/\(exit 2\): step core left no record in \$TASKSHARD_EVIDENCE_FILE \(pass --execution_log_json_file/);
    const unset = createVerifier({ kind: 'builtin', tool: 'bazel' }, { env: {} });
    expect((await runTimed(withVerification(ok, unset, evidenceFile), ctx(), () => 0)).unpublished).toMatch(/needs \$BAZEL_REMOTE_CACHE/);
  });
});

describe('builtin:turbo', () => {
  it("checks the artifact of every task in the step's run summary on the cache server, with the token and team", async () => {
    present.add('/v8/artifacts/1111aaaa2222bbbb');
    const summary = (hashes: string[]): string => JSON.stringify({ tasks: hashes.map((hash, i) => ({ taskId: `p${i}#build`, package: `p${i}`, hash, cache: { status: 'MISS' } })) });
    const verifier = createVerifier({ kind: 'builtin', tool: 'turbo' }, { env: { TURBO_API: base, TURBO_TOKEN: 'tok', TURBO_TEAM: 'ci' } });
    const writing = (text: string): StepRunner => async () => {
      writeFileSync(evidenceFile, text);
      return { ok: true, exitCode: 0 };
    };
    expect(await runTimed(withVerification(writing(summary(['1111aaaa2222bbbb'])), verifier, evidenceFile), ctx(), () => 0)).toMatchObject({ ok: true });
    const run = await runTimed(withVerification(writing(summary(['1111aaaa2222bbbb', '3333cccc4444dddd'])), verifier, evidenceFile), ctx(), () => 0);
    expect(run.unpublished).toContain(`no artifact on ${base} for p1#build`);
    expect(seen.find((s) => s.url === '/v8/artifacts/3333cccc4444dddd?slug=ci')).toEqual({ method: 'HEAD', url: '/v8/artifacts/3333cccc4444dddd?slug=ci', auth: 'Bearer tok' });
  });
});
