import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limits } from '../shared/limits.js';
import { substituteArgv } from './argv-template.js';
import { actionDigest, parseActionResult, type ActionResultView } from './bazel-action-key.js';
import { buildTools, parseBazelExecLog, parseTurboRunSummary, SummaryLineCollector, type BuildTool } from './cache-evidence.js';
import { OutputTail } from './output-tail.js';
import type { StepContext, StepOutcome, StepRunner } from './step-runner.js';

/**
 * Verified completion (`--verify CMD`): a step's success is reported to the authority only after
 * its result is in the remote cache. After a successful step the verifier runs; when it fails the
 * step is reported as built but NOT published (`step.finished` with `ok: false, unpublished: true`),
 * and the authority leases it again (to another peer where there is one) without counting a build
 * failure. CMD is a command line (split like a shell would, quotes honoured, no shell run) with
 * `{step}` and `{target}` substituted, or a built-in verifier:
 *
 * - `builtin:bazel`: every remote-cacheable action of the step, as its execution log records it
 *   (`--execution_log_json_file=$TASKSHARD_EVIDENCE_FILE`), has its result in the HTTP cache
 *   `$BAZEL_REMOTE_CACHE` (`GET /ac/<action digest>`, naming the outputs the step produced) and
 *   every output is served (`HEAD /cas/<sha256>`).
 * - `builtin:turbo`: the artifact of every task of the step's run summary (copied to
 *   `$TASKSHARD_EVIDENCE_FILE`) exists on the cache server `$TURBO_API` (`HEAD /v8/artifacts/<hash>`,
 *   `$TURBO_TOKEN`, `$TURBO_TEAM`).
 */

export type VerifySpec = { readonly kind: 'builtin'; readonly tool: BuildTool } | { readonly kind: 'command'; readonly command: string; readonly args: readonly string[] };

/** Splits a command line like a POSIX shell (single and double quotes, backslash), without running one. */
export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) word += text[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote !== null) throw new Error(`unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

/** Parses `--verify`; throws a message naming the problem (the caller adds the flag). */
export function parseVerifySpec(text: string): VerifySpec {
  const builtin = text.trim().match(/^builtin:(.*)$/);
  if (builtin) {
    const tool = builtin[1] as BuildTool;
    if (!buildTools.includes(tool)) throw new Error(`unknown built-in verifier "${text.trim()}" (expected ${buildTools.map((t) => `builtin:${t}`).join(' or ')})`);
    return { kind: 'builtin', tool };
  }
  const [command, ...args] = splitCommandLine(text);
  if (command === undefined) throw new Error('must name a command, or builtin:bazel or builtin:turbo');
  return { kind: 'command', command, args };
}

export interface Verification {
  readonly ok: boolean;
  readonly exitCode: number | null;
  /** What the verifier found (its output tail, or the built-in's finding). */
  readonly detail: string;
}

export interface VerifyContext {
  readonly stepId: string;
  readonly target: string;
  readonly evidenceFile: string;
  readonly signal: AbortSignal;
}

export type Verifier = (ctx: VerifyContext) => Promise<Verification>;

export interface VerifierOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Per HTTP request of a built-in verifier. Default 10 000 ms. */
  readonly requestTimeoutMs?: number;
}

export function createVerifier(spec: VerifySpec, options: VerifierOptions = {}): Verifier {
  const env = options.env ?? process.env;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  if (spec.kind === 'builtin') return spec.tool === 'bazel' ? (ctx) => verifyBazel(ctx, env, timeoutMs) : (ctx) => verifyTurbo(ctx, env, timeoutMs);
  return (ctx) => runVerifyCommand(spec, ctx, env, options.cwd);
}

/**
 * Wraps a runner: a step that succeeded is verified; a failed verification turns the outcome into
 * `ok: false` with `unpublished` set (its reason), which the peer reports as "not published".
 * The evidence file is removed before every run so a verifier never reads an older run's record.
 */
export function withVerification(runner: StepRunner, verifier: Verifier, evidenceFile: string): StepRunner {
  const inner = withEvidenceFile(runner, evidenceFile);
  return async (ctx: StepContext): Promise<StepOutcome> => {
    const outcome = await inner(ctx);
    if (ctx.phase !== 'step' || !outcome.ok || ctx.signal.aborted) return outcome;
    const verification = await verifier({ stepId: ctx.stepId, target: ctx.target, evidenceFile, signal: ctx.signal }).catch(
      (err: Error): Verification => ({ ok: false, exitCode: null, detail: `the verifier could not run: ${err.message}` }),
    );
    if (verification.ok) return outcome;
    const reason = `built, but --verify says it is not in the remote cache (${verification.exitCode === null ? 'no exit code' : `exit ${verification.exitCode}`}): ${verification.detail}`;
    return { ok: false, exitCode: verification.exitCode, logTail: `taskshard: ${reason}`, unpublished: reason.slice(0, 500) };
  };
}

/** Removes `evidenceFile` before every run, so what is read after a run is that run's record. */
export function withEvidenceFile(runner: StepRunner, evidenceFile: string): StepRunner {
  return (ctx) => {
    rmSync(evidenceFile, { force: true });
    return runner(ctx);
  };
}

function fail(detail: string, exitCode: number | null = 1): Verification {
  return { ok: false, exitCode, detail };
}

function readEvidence(ctx: VerifyContext, how: string): string | Verification {
  if (!existsSync(ctx.evidenceFile)) return fail(`step ${ctx.stepId} left no record in $TASKSHARD_EVIDENCE_FILE (${how})`, 2);
  return readFileSync(ctx.evidenceFile, 'utf8');
}

/** A URL without credentials plus the Authorization header they stood for. */
function splitCredentials(raw: string, name: string): { base: string; headers: Record<string, string> } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`$${name} is not a URL: "${raw}"`);
  }
  const headers: Record<string, string> = {};
  if (url.username || url.password) {
    headers['authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  return { base: url.toString().replace(/\/+$/, ''), headers };
}

/** HEADs each URL (8 at a time); returns the ones that are not there, or throws on other answers. */
async function missingUrls(urls: readonly string[], headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < urls.length; i += 8) {
    const batch = urls.slice(i, i + 8);
    const statuses = await Promise.all(
      batch.map(async (url) => {
        const res = await fetch(url, { method: 'HEAD', headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
        return res.status;
      }),
    );
    statuses.forEach((status, j) => {
      if (status === 404) missing.push(batch[j]!);
      else if (status < 200 || status > 299) throw new Error(`HEAD ${batch[j]} answered ${status}`);
    });
  }
  return missing;
}

/** GET of a small body (an action-cache entry); null on 404, throws on other answers. */
async function getBytes(url: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<Buffer | null> {
  const res = await fetch(url, { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`GET ${url} answered ${res.status}`);
  }
  return Buffer.from(await res.arrayBuffer());
}

const short = (hash: string): string => hash.slice(0, 12);
const listed = (items: readonly string[]): string => `${items.slice(0, 5).join(', ')}${items.length > 5 ? ', ...' : ''}`;

/**
 * The step's remote-cacheable actions, from its execution log: each has an action-cache entry
 * (`GET /ac/<action digest>`, the key recomputed from the log by bazel-action-key.ts) whose result
 * names the outputs the step produced with the same digests, and every output blob is served
 * (`HEAD /cas/<sha256>`). That is what another job's Bazel needs for a remote cache hit.
 */
async function verifyBazel(ctx: VerifyContext, env: Readonly<Record<string, string | undefined>>, timeoutMs: number): Promise<Verification> {
  const cache = env['BAZEL_REMOTE_CACHE'];
  if (!cache) return fail('builtin:bazel needs $BAZEL_REMOTE_CACHE, the HTTP cache the step built against', 2);
  const text = readEvidence(ctx, 'pass --execution_log_json_file="$TASKSHARD_EVIDENCE_FILE" to bazel for the step');
  if (typeof text !== 'string') return text;
  const { base, headers } = splitCredentials(cache, 'BAZEL_REMOTE_CACHE');
  const spawns = parseBazelExecLog(text, ctx.evidenceFile).filter((s) => s.remoteCacheable);
  if (spawns.length === 0) return { ok: true, exitCode: 0, detail: 'the step ran no remote-cacheable actions' };
  const noEntry: string[] = [];
  const wrongResult: string[] = [];
  const blobs = new Map<string, string>();
  for (let i = 0; i < spawns.length; i += 8) {
    const batch = spawns.slice(i, i + 8);
    const results = await Promise.all(batch.map((s) => getBytes(`${base}/ac/${actionDigest(s.actionKey)}`, headers, timeoutMs, ctx.signal)));
    batch.forEach((spawn, j) => {
      const name = `${spawn.mnemonic} ${short(actionDigest(spawn.actionKey))} (${spawn.outputs[0]?.path ?? 'no outputs'})`;
      const bytes = results[j]!;
      if (bytes === null) return void noEntry.push(name);
      let result: ActionResultView;
      try {
        result = parseActionResult(bytes);
      } catch (err) {
        return void wrongResult.push(`${name}: not an ActionResult (${(err as Error).message})`);
      }
      const served = new Map(result.outputFiles.map((o) => [o.path, o.sha256]));
      const differing = spawn.outputs.filter((o) => served.get(o.path) !== o.sha256);
      if (result.exitCode !== 0) wrongResult.push(`${name}: the entry records exit ${result.exitCode}`);
      else if (differing.length > 0) wrongResult.push(`${name}: the entry serves other content for ${listed(differing.map((o) => o.path))}`);
      for (const o of result.outputFiles) if (o.sizeBytes > 0) blobs.set(`${base}/cas/${o.sha256}`, o.path);
      for (const d of result.logDigests) if (d.sizeBytes > 0) blobs.set(`${base}/cas/${d.hash}`, `${name} output log`);
    });
  }
  const missingBlobs = blobs.size === 0 ? [] : await missingUrls([...blobs.keys()], headers, timeoutMs, ctx.signal);
  if (noEntry.length === 0 && wrongResult.length === 0 && missingBlobs.length === 0) {
    return { ok: true, exitCode: 0, detail: `${spawns.length} action results and ${blobs.size} outputs served by ${base}` };
  }
  const problems = [
    ...(noEntry.length > 0 ? [`${noEntry.length} of ${spawns.length} actions have no action-cache entry in ${base}: ${listed(noEntry)}`] : []),
    ...wrongResult,
    ...(missingBlobs.length > 0 ? [`${missingBlobs.length} of ${blobs.size} outputs are not in ${base}: ${listed(missingBlobs.map((u) => blobs.get(u)!))}`] : []),
  ];
  return fail(problems.join('; '));
}

async function verifyTurbo(ctx: VerifyContext, env: Readonly<Record<string, string | undefined>>, timeoutMs: number): Promise<Verification> {
  const api = env['TURBO_API'];
  const token = env['TURBO_TOKEN'];
  const team = env['TURBO_TEAM'] ?? env['TURBO_TEAMID'];
  if (!api || !token || !team) return fail('builtin:turbo needs $TURBO_API, $TURBO_TOKEN and $TURBO_TEAM (the cache the step built against)', 2);
  const text = readEvidence(ctx, 'copy the `turbo run --summarize` summary (.turbo/runs/*.json) there');
  if (typeof text !== 'string') return text;
  const tasks = parseTurboRunSummary(text, ctx.evidenceFile);
  if (tasks.length === 0) return fail('the run summary lists no tasks');
  const { base } = splitCredentials(api, 'TURBO_API');
  const query = team.startsWith('team_') ? `teamId=${encodeURIComponent(team)}` : `slug=${encodeURIComponent(team)}`;
  const urls = new Map(tasks.map((t) => [`${base}/v8/artifacts/${encodeURIComponent(t.hash)}?${query}`, t.taskId]));
  const missing = await missingUrls([...urls.keys()], { authorization: `Bearer ${token}` }, timeoutMs, ctx.signal);
  if (missing.length === 0) return { ok: true, exitCode: 0, detail: `${urls.size} artifacts on ${base}` };
  return fail(`no artifact on ${base} for ${missing.map((u) => urls.get(u)).join(', ')}`);
}

function runVerifyCommand(spec: Extract<VerifySpec, { kind: 'command' }>, ctx: VerifyContext, env: Readonly<Record<string, string | undefined>>, cwd: string | undefined): Promise<Verification> {
  return new Promise((resolve) => {
    const args = substituteArgv(spec.args, { target: ctx.target, step: ctx.stepId });
    const childEnv: Record<string, string | undefined> = { ...env, TASKSHARD_STEP: ctx.stepId, TASKSHARD_TARGET: ctx.target, TASKSHARD_PHASE: 'verify', TASKSHARD_EVIDENCE_FILE: ctx.evidenceFile };
    delete childEnv['TASKSHARD_TOKEN'];
    const tail = new OutputTail(Math.min(limits.maxLogTailChars, 2000));
    const child = spawn(spec.command, args, { cwd, env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    ctx.signal.addEventListener('abort', kill, { once: true });
    child.stdout.on('data', (d: Buffer) => tail.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => tail.push(d.toString()));
    child.once('error', (err) => {
      ctx.signal.removeEventListener('abort', kill);
      resolve(fail(`cannot run ${spec.command}: ${err.message}`, null));
    });
    child.once('close', (code, signal) => {
      ctx.signal.removeEventListener('abort', kill);
      const detail = tail.text().trim() || (signal ? `killed by ${signal}` : `exit ${code}`);
      resolve({ ok: code === 0, exitCode: code, detail });
    });
  });
}

/** The CLI's wiring for `--verify` and `--build-tool`: a private evidence file, the env and runner around it. */
export interface EvidenceSetup {
  /** `$TASKSHARD_EVIDENCE_FILE`, or undefined when neither flag is set. */
  readonly file: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  wrap(runner: StepRunner): StepRunner;
  /** For the command runner's `onOutput`: keeps the universe build's summary lines (with `--build-tool`). */
  readonly onOutput: ((ctx: StepContext, stream: string, chunk: string) => void) | undefined;
  /** The universe build's summary lines, for cache evidence when it left no record; undefined without `--build-tool`. */
  readonly universeOutput: (() => string) | undefined;
  cleanup(): void;
}

/** Throws with a message for `--verify` when its value is not usable. */
export function prepareEvidence(verify: string | undefined, buildTool: boolean): EvidenceSetup {
  const spec = verify === undefined ? null : parseVerifySpec(verify);
  if (spec === null && !buildTool) return { file: undefined, env: process.env, wrap: (r) => r, onOutput: undefined, universeOutput: undefined, cleanup: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'taskshard-evidence-'));
  const file = join(dir, 'record.json');
  const env = { ...process.env, TASKSHARD_EVIDENCE_FILE: file };
  const lines = buildTool ? new SummaryLineCollector() : null;
  const resetting = (runner: StepRunner): StepRunner => (ctx) => {
    if (ctx.phase === 'universe') lines?.reset();
    return runner(ctx);
  };
  return {
    file,
    env,
    wrap: (runner) => resetting(spec === null ? withEvidenceFile(runner, file) : withVerification(runner, createVerifier(spec, { env }), file)),
    onOutput: lines === null ? undefined : (ctx, stream, chunk) => {
      if (ctx.phase === 'universe') lines.push(stream, chunk);
    },
    universeOutput: lines === null ? undefined : () => lines.text(),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
