import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTimed, type StepRunner } from '../../peer/step-runner.js';
import { createVerifier, parseVerifySpec, splitCommandLine, withVerification } from '../../peer/verify.js';

const dir = mkdtempSync(join(tmpdir(), 'taskshard-verify-test-'));
const evidenceFile = join(dir, 'record.json');
/** Path → body the cache serves (HEAD answers 200 without it). */
const present = new Map<string, Buffer>();
const seen: { method: string; url: string; auth: string | undefined }[] = [];
let server: Server;
let base = '';

/** A real HTTP cache on 127.0.0.1: 200 for the paths in `present`, 404 otherwise. */
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
    const body = present.get((req.url ?? '').split('?')[0]!);
    res.statusCode = body === undefined ? 404 : 200;
    res.end(req.method === 'GET' ? body : undefined);
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

/** A real Bazel 4.2 build of examples/bazel //gen/... : its execution log and the action-cache entries it wrote. */
const fixture = join(import.meta.dirname, '../fixtures/bazel-4.2');
const execLog = readFileSync(join(fixture, 'codegen.exec-log.json'), 'utf8');
const acEntries = new Map(readdirSync(join(fixture, 'ac')).map((hash) => [hash, readFileSync(join(fixture, 'ac', hash))]));
const genruleKey = '7faf2c20c8cb52002b8713cbe0d864d798451fadc211ebdcfe961e671adf3373';

/** Serves the fixture's action-cache entries (but `without`) and every output blob they name (but `withoutBlob`). */
function serveBazelCache(without: string | null = null, withoutBlob: string | null = null): void {
  for (const key of [...present.keys()]) if (key.startsWith('/ac/') || key.startsWith('/cas/')) present.delete(key);
  for (const [hash, body] of acEntries) {
    if (hash !== without) present.set(`/ac/${hash}`, body);
    for (const m of body.toString('latin1').matchAll(/[0-9a-f]{64}/g)) if (m[0] !== withoutBlob) present.set(`/cas/${m[0]}`, Buffer.alloc(0));
  }
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
  const writing = (log: string): StepRunner => async () => {
    writeFileSync(evidenceFile, log);
    return { ok: true, exitCode: 0 };
  };

  it("passes when the cache serves the action result of every action in the step's execution log, and every output", async () => {
    serveBazelCache();
    const verifier = createVerifier({ kind: 'builtin', tool: 'bazel' }, { env: { BAZEL_REMOTE_CACHE: base } });
    const before = seen.length;
    expect(await runTimed(withVerification(writing(execLog), verifier, evidenceFile), ctx(), () => 0)).toMatchObject({ ok: true });
    // One GET per action, at the key Bazel itself used; then a HEAD per output blob.
    const asked = seen.slice(before);
    expect(asked.filter((s) => s.method === 'GET').map((s) => s.url).sort()).toEqual([...acEntries.keys()].map((k) => `/ac/${k}`).sort());
    expect(asked.filter((s) => s.method === 'HEAD').length).toBeGreaterThanOrEqual(4);
  });

  it('is not published when an action has no action-cache entry, naming the action', async () => {
    serveBazelCache(genruleKey);
    const verifier = createVerifier({ kind: 'builtin', tool: 'bazel' }, { env: { BAZEL_REMOTE_CACHE: base } });
    const run = await runTimed(withVerification(writing(execLog), verifier, evidenceFile), ctx(), () => 0);
    expect(run.unpublished).toContain(`(exit 1): 1 of 4 actions have no action-cache entry in ${base}: Genrule 7faf2c20c8cb (bazel-out/k8-fastbuild/bin/gen/codegen_gen.c)`);
  });

  it('is not published when an entry serves other outputs, or an output blob is missing', async () => {
    serveBazelCache(null, '5c1d214a79c2ca928ec5b3f36836878dd0cb7d4ae89e114409996ec6345a0268');
    const verifier = createVerifier({ kind: 'builtin', tool: 'bazel' }, { env: { BAZEL_REMOTE_CACHE: base } });
    const missingBlob = await runTimed(withVerification(writing(execLog), verifier, evidenceFile), ctx(), () => 0);
    expect(missingBlob.unpublished).toMatch(/1 of \d+ outputs are not in http:\/\/127\.0\.0\.1:\d+: bazel-out\/k8-fastbuild\/bin\/gen\/codegen_gen\.c$/);
    // Another action's result under the genrule's key: the entry is there but does not hold what the step built.
    serveBazelCache();
    present.set(`/ac/${genruleKey}`, acEntries.get('257515cc6223192826e1936954fd560aab2c0a5f8219fffa23c97a186d72dd89')!);
    const wrong = await runTimed(withVerification(writing(execLog), verifier, evidenceFile), ctx(), () => 0);
    expect(wrong.unpublished).toContain('Genrule 7faf2c20c8cb (bazel-out/k8-fastbuild/bin/gen/codegen_gen.c): the entry serves other content for bazel-out/k8-fastbuild/bin/gen/codegen_gen.c');
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
    present.set('/v8/artifacts/1111aaaa2222bbbb', Buffer.alloc(0));
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
