import { existsSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import { postToCohort } from './authority-post.js';
import type { ActionKeyInput } from './bazel-action-key.js';
import { buildToolSchema, type CacheEvidenceReport, type cacheEvidenceSchema } from '../shared/protocol.js';
import type { ParsedPeerOptions } from './options.js';
import type { PeerReport } from './report.js';
import type { PeerResult } from './run-peer.js';

/**
 * The build tool's own record of what came from the remote cache, parsed from its output:
 * Bazel's execution log (`--execution_log_json_file`, a stream of SpawnExec JSON objects) and
 * summary line (`INFO: 42 processes: 26 remote cache hit, 16 internal.`), and turbo's run summary
 * (`turbo run --summarize`, `.turbo/runs/<id>.json`). `cacheEvidence()` turns one of them into hits,
 * misses and the shared steps that were not cache hits for this peer, which the peer reports.
 * Without a record (a build script that does not write one), the tool's summary line in the
 * universe build's output still gives the totals (`SummaryLineCollector`, `cacheEvidenceFromOutput`).
 */

export const buildTools = buildToolSchema.options;
export type BuildTool = z.infer<typeof buildToolSchema>;

/** One action Bazel ran or took from a cache, as its execution log records it. */
export interface BazelSpawn {
  readonly mnemonic: string;
  /** How Bazel ran it: `remote cache hit`, `local`, `linux-sandbox`, `worker`, ... */
  readonly runner: string;
  readonly remoteCacheHit: boolean;
  /** Bazel would store its result in the remote cache (not tagged `no-remote-cache` etc.). */
  readonly remoteCacheable: boolean;
  /** Output paths (`bazel-out/k8-fastbuild/bin/libs/core/core_gen.c`) with their sha256. */
  readonly outputs: readonly { readonly path: string; readonly sha256: string; readonly sizeBytes: number }[];
  /** What its remote-cache key is computed from (peer/bazel-action-key.ts). */
  readonly actionKey: ActionKeyInput;
}

/** Parses a JSON execution log: concatenated JSON objects, one per spawn. Throws naming the offset. */
export function parseBazelExecLog(text: string, source = 'execution log'): BazelSpawn[] {
  const spawns: BazelSpawn[] = [];
  let start = -1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') {
      if (depth === 0) start = i;
      depth += 1;
    } else if (ch === '}') {
      depth -= 1;
      if (depth < 0) throw new Error(`${source}: unbalanced '}' at offset ${i}`);
      if (depth === 0) spawns.push(toSpawn(text.slice(start, i + 1), source, start));
    } else if (depth === 0 && !/\s/.test(ch ?? '')) {
      throw new Error(`${source}: unexpected ${JSON.stringify(ch)} at offset ${i} (expected a JSON object)`);
    }
  }
  if (depth !== 0 || inString) throw new Error(`${source}: truncated (an object starting at offset ${start} never ends)`);
  return spawns;
}

function toSpawn(json: string, source: string, offset: number): BazelSpawn {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`${source}: the object at offset ${offset} is not JSON (${(err as Error).message})`);
  }
  const record = raw as { mnemonic?: unknown; runner?: unknown; remoteCacheHit?: unknown; remoteCacheable?: unknown; actualOutputs?: unknown };
  if (typeof record.mnemonic !== 'string') throw new Error(`${source}: the object at offset ${offset} has no mnemonic (not a Bazel execution log?)`);
  const outputs = Array.isArray(record.actualOutputs) ? record.actualOutputs : [];
  return {
    actionKey: toActionKeyInput(raw as ExecLogEntry),
    mnemonic: record.mnemonic,
    runner: typeof record.runner === 'string' ? record.runner : '',
    remoteCacheHit: record.remoteCacheHit === true,
    remoteCacheable: record.remoteCacheable === true,
    outputs: outputs.map((o: { path?: unknown; digest?: { hash?: unknown; sizeBytes?: unknown } }) => ({
      path: String(o.path ?? ''),
      sha256: String(o.digest?.hash ?? ''),
      sizeBytes: Number(o.digest?.sizeBytes ?? 0),
    })),
  };
}

/** The fields of a SpawnExec that its action key is made of (Bazel's JSON names). */
interface ExecLogEntry {
  commandArgs?: unknown;
  environmentVariables?: unknown;
  platform?: { properties?: unknown };
  inputs?: unknown;
  listedOutputs?: unknown;
  timeoutMillis?: unknown;
  digest?: { hash?: unknown };
}

const pairs = (list: unknown): { name: string; value: string }[] =>
  Array.isArray(list) ? list.map((p: { name?: unknown; value?: unknown }) => ({ name: String(p.name ?? ''), value: String(p.value ?? '') })) : [];

function toActionKeyInput(e: ExecLogEntry): ActionKeyInput {
  const inputs = Array.isArray(e.inputs) ? e.inputs : [];
  return {
    arguments: Array.isArray(e.commandArgs) ? e.commandArgs.map(String) : [],
    environment: pairs(e.environmentVariables),
    platform: e.platform === undefined ? null : pairs(e.platform.properties),
    inputs: inputs.map((i: { path?: unknown; digest?: { hash?: unknown; sizeBytes?: unknown } }) => ({
      path: String(i.path ?? ''),
      sha256: String(i.digest?.hash ?? ''),
      sizeBytes: Number(i.digest?.sizeBytes ?? 0),
    })),
    outputs: Array.isArray(e.listedOutputs) ? e.listedOutputs.map(String) : [],
    timeoutMillis: Number(e.timeoutMillis ?? 0) || 0,
    loggedDigest: typeof e.digest?.hash === 'string' && e.digest.hash !== '' ? e.digest.hash : null,
  };
}

/** Bazel's `N processes: ...` line, by runner (`remote cache hit`, `internal`, `local`, ...). */
export interface BazelProcessSummary {
  readonly total: number;
  readonly byRunner: Readonly<Record<string, number>>;
  readonly remoteCacheHits: number;
  /** Processes that really ran (everything but cache hits and Bazel-internal ones). */
  readonly executed: number;
}

/** The last `INFO: N processes: ...` line of a Bazel build's output, or null when there is none. */
export function parseBazelProcessSummary(output: string): BazelProcessSummary | null {
  const lines = [...output.matchAll(/^(?:INFO: )?(\d+) process(?:es)?(?:: (.*?))?\.?$/gm)];
  const last = lines.at(-1);
  if (last === undefined) return null;
  const byRunner: Record<string, number> = {};
  for (const part of (last[2] ?? '').split(',')) {
    const m = part.trim().match(/^(\d+) (.+)$/);
    if (m) byRunner[m[2]!] = Number(m[1]);
  }
  const remoteCacheHits = (byRunner['remote cache hit'] ?? 0) + (byRunner['disk cache hit'] ?? 0);
  const internal = byRunner['internal'] ?? 0;
  const total = Number(last[1]);
  return { total, byRunner, remoteCacheHits, executed: total - remoteCacheHits - internal };
}

/** turbo's `Cached:    5 cached, 6 total` line (the last one), or null when there is none. */
export function parseTurboCachedLine(output: string): { readonly cached: number; readonly total: number } | null {
  const last = [...output.matchAll(/^\s*Cached:\s+(\d+) cached, (\d+) total/gm)].at(-1);
  return last === undefined ? null : { cached: Number(last[1]), total: Number(last[2]) };
}

// eslint-disable-next-line no-control-regex -- terminal colour codes are what it removes
const ansi = /\x1b\[[0-9;?]*[A-Za-z]/g;
const summaryLine = /^(?:INFO: )?\d+ process(?:es)?(?:: .*)?\.?$|^\s*Cached:\s+\d+ cached, \d+ total/;

/**
 * Keeps the lines of a build's output that a tool's cache summary is on (Bazel's
 * `INFO: N processes: X remote cache hit, ...`, turbo's `Cached: N cached, M total`), so the peer
 * has cache evidence of the universe build even when the build script leaves no record. Lines are
 * split per stream (chunks may end mid-line); colours are dropped; only the newest few are kept.
 */
export class SummaryLineCollector {
  private lines: string[] = [];
  private readonly partial = new Map<string, string>();

  /** Forget everything (a new build starts). */
  reset(): void {
    this.lines = [];
    this.partial.clear();
  }

  push(stream: string, chunk: string): void {
    const text = (this.partial.get(stream) ?? '') + chunk;
    const parts = text.split(/\r?\n|\r/);
    // A line longer than this is no summary line: do not let one grow without bound.
    this.partial.set(stream, (parts.pop() ?? '').slice(-4096));
    for (const part of parts) this.keep(part);
  }

  /** The kept lines, the unfinished last line of each stream included. */
  text(): string {
    for (const rest of this.partial.values()) this.keep(rest);
    this.partial.clear();
    return this.lines.join('\n');
  }

  private keep(line: string): void {
    const plain = line.replace(ansi, '').trimEnd();
    if (!summaryLine.test(plain)) return;
    this.lines.push(plain);
    if (this.lines.length > 16) this.lines.shift();
  }
}

/**
 * Cache evidence from the summary line in a build's output (no record): totals only. Bazel: remote
 * (or disk) cache hits, and processes that ran (internal ones excluded). turbo: cached tasks, and
 * the rest. `auto` takes whichever tool's line is there. Returns why not when there is none.
 */
export function cacheEvidenceFromOutput(choice: BuildToolChoice, output: string): CacheEvidence | string {
  const bazel = choice === 'turbo' ? null : parseBazelProcessSummary(output);
  if (bazel !== null) return { tool: 'bazel', hits: bazel.remoteCacheHits, misses: bazel.executed, missedSteps: [], source: 'output' };
  const turbo = choice === 'bazel' ? null : parseTurboCachedLine(output);
  if (turbo !== null) return { tool: 'turbo', hits: turbo.cached, misses: turbo.total - turbo.cached, missedSteps: [], source: 'output' };
  const expected = choice === 'bazel' ? "Bazel's `INFO: N processes: ...` line" : choice === 'turbo' ? "turbo's `Cached: N cached, M total` line" : "Bazel's `INFO: N processes: ...` or turbo's `Cached: ...` line";
  return `its output has no ${expected}`;
}

/** One task of a turbo run summary. */
export interface TurboTask {
  readonly taskId: string;
  readonly packageName: string;
  readonly hash: string;
  /** `HIT` or `MISS`. */
  readonly status: string;
  /** `REMOTE` or `LOCAL` on a hit; null on a miss. */
  readonly source: string | null;
}

/** Parses `turbo run --summarize` output (`.turbo/runs/<id>.json`). Throws naming what is missing. */
export function parseTurboRunSummary(text: string, source = 'turbo run summary'): TurboTask[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not JSON (${(err as Error).message})`);
  }
  const tasks = (raw as { tasks?: unknown }).tasks;
  if (!Array.isArray(tasks)) throw new Error(`${source}: no "tasks" list (not a turbo run summary?)`);
  return tasks.map((t: { taskId?: unknown; package?: unknown; hash?: unknown; cache?: { status?: unknown; source?: unknown } }, i) => {
    if (typeof t.taskId !== 'string' || typeof t.hash !== 'string' || typeof t.cache?.status !== 'string') {
      throw new Error(`${source}: tasks[${i}] lacks taskId, hash or cache.status`);
    }
    const packageName = typeof t.package === 'string' ? t.package : t.taskId.split('#')[0]!;
    return { taskId: t.taskId, packageName, hash: t.hash, status: t.cache.status, source: typeof t.cache.source === 'string' ? t.cache.source : null };
  });
}

/** A shared step as the peer knows it: its id and target. */
export interface EvidenceStep {
  readonly id: string;
  readonly target: string;
}

/**
 * What a universe build took from cache, as reported to the authority: Bazel's remote cache hits;
 * turbo's hits (remote, or this job's local copy of a remote or own artifact).
 */
export type CacheEvidence = z.infer<typeof cacheEvidenceSchema>;

/** The Bazel package a step's target covers: `//libs/core/...` → `libs/core/` (prefix), `//a:b` → `a` (exact). */
function bazelPackageMatcher(target: string): ((pkg: string) => boolean) | null {
  const m = target.match(/^\/\/([^:]*?)(\/\.\.\.)?(?::.*)?$/);
  if (!m) return null;
  const pkg = m[1]!;
  if (m[2] !== undefined || pkg === '...') {
    const base = pkg === '...' ? '' : pkg;
    return (p) => base === '' || p === base || p.startsWith(`${base}/`);
  }
  return (p) => p === pkg;
}

/** The package of an output path: `bazel-out/k8-fastbuild/bin/libs/core/core_gen.c` → `libs/core`. */
function bazelOutputPackage(path: string): string | null {
  const m = path.match(/^bazel-out\/[^/]+\/(?:bin|genfiles)\/(.+)\/[^/]+$/);
  return m ? m[1]!.replace(/\/_objs\/.*$/, '') : null;
}

/**
 * Cache evidence of a Bazel universe build from its execution log. A spawn is a miss when it ran
 * here (not a cache hit); Bazel-internal spawns do not appear in the log. A step is missed when an
 * output of a missed spawn lies in a package its target covers.
 */
export function bazelCacheEvidence(spawns: readonly BazelSpawn[], steps: readonly EvidenceStep[]): CacheEvidence {
  const matchers = steps.map((s) => ({ id: s.id, covers: bazelPackageMatcher(s.target) }));
  const missed = new Set<string>();
  let hits = 0;
  let misses = 0;
  for (const spawn of spawns) {
    if (spawn.remoteCacheHit) {
      hits += 1;
      continue;
    }
    misses += 1;
    for (const output of spawn.outputs) {
      const pkg = bazelOutputPackage(output.path);
      if (pkg === null) continue;
      for (const m of matchers) if (m.covers?.(pkg)) missed.add(m.id);
    }
  }
  return { tool: 'bazel', hits, misses, missedSteps: steps.map((s) => s.id).filter((id) => missed.has(id)) };
}

/**
 * Cache evidence of a turbo universe run from its summary. A task is a hit when turbo replayed it
 * from a cache (remote, or the local copy of an earlier remote hit), a miss when it ran. A step is
 * missed when the task of the package its target names ran here.
 */
export function turboCacheEvidence(tasks: readonly TurboTask[], steps: readonly EvidenceStep[]): CacheEvidence {
  const missedPackages = new Set(tasks.filter((t) => t.status !== 'HIT').map((t) => t.packageName));
  const hits = tasks.filter((t) => t.status === 'HIT').length;
  return {
    tool: 'turbo',
    hits,
    misses: tasks.length - hits,
    missedSteps: steps.filter((s) => missedPackages.has(s.target)).map((s) => s.id),
  };
}

/** `--build-tool`: a tool, or `auto` (recognized from the record the universe build left). */
export type BuildToolChoice = BuildTool | 'auto';

/**
 * Reads the universe build's record (`$TASKSHARD_EVIDENCE_FILE`: Bazel's JSON execution log or
 * turbo's run summary) and returns its cache evidence. When the build left no record (a script
 * that does not pass the flag), falls back to the tool's summary line in the build's `output`
 * (totals only). Returns a sentence saying why there is none otherwise.
 */
export function readCacheEvidence(choice: BuildToolChoice, evidenceFile: string | undefined, steps: readonly EvidenceStep[], output?: string): CacheEvidence | string {
  if (evidenceFile === undefined || !existsSync(evidenceFile)) {
    const noRecord =
      evidenceFile === undefined
        ? 'no record file to read'
        : 'the universe build left no record in $TASKSHARD_EVIDENCE_FILE (Bazel: --execution_log_json_file="$TASKSHARD_EVIDENCE_FILE"; turbo: copy the --summarize file there)';
    if (output === undefined) return noRecord;
    const fromOutput = cacheEvidenceFromOutput(choice, output);
    return typeof fromOutput === 'string' ? `${noRecord}, and ${fromOutput}` : fromOutput;
  }
  const text = readFileSync(evidenceFile, 'utf8');
  const tool: BuildTool = choice !== 'auto' ? choice : /^\s*\{\s*"id"|"turboVersion"/.test(text) ? 'turbo' : 'bazel';
  try {
    return tool === 'bazel' ? bazelCacheEvidence(parseBazelExecLog(text, evidenceFile), steps) : turboCacheEvidence(parseTurboRunSummary(text, evidenceFile), steps);
  } catch (err) {
    return (err as Error).message;
  }
}

/** One line for the CI log. */
export function describeCacheEvidence(e: CacheEvidence): string {
  const unit = e.tool === 'bazel' ? 'actions' : 'tasks';
  if (e.source === 'output') {
    const record = e.tool === 'bazel' ? 'pass --execution_log_json_file="$TASKSHARD_EVIDENCE_FILE"' : 'copy the --summarize file to $TASKSHARD_EVIDENCE_FILE';
    return `universe cache evidence (${e.tool}, from its summary line): ${e.hits} ${unit} from cache, ${e.misses} ran here; which shared steps missed the cache needs the build's record (${record})`;
  }
  const missed = e.missedSteps.length === 0 ? 'every shared step came from the cache or was built here' : `shared steps NOT from the cache: ${e.missedSteps.join(', ')}`;
  return `universe cache evidence (${e.tool}): ${e.hits} ${unit} from cache, ${e.misses} ran here; ${missed}`;
}

/**
 * Sends the evidence to the authority (`POST /api/v1/cohorts/:cohortId/cache-evidence`, the peer
 * token as Bearer). Resolves to null when accepted, else to what went wrong (never throws: the
 * build's result does not depend on it).
 */
export function postCacheEvidence(serverWsUrl: string, token: string | null, cohortId: string, report: CacheEvidenceReport, timeoutMs = 10_000): Promise<string | null> {
  return postToCohort(serverWsUrl, token, cohortId, 'cache-evidence', report, timeoutMs);
}

/**
 * After the run: with `buildTool` set and a universe build that ran, reads its cache evidence,
 * prints it, sends it to the authority (when this peer shared a cohort) and adds it to the result.
 */
export async function withCacheEvidence<R extends PeerResult>(
  result: R,
  o: ParsedPeerOptions,
  steps: readonly EvidenceStep[],
  token: string | null,
  report: PeerReport,
  /** The authority that welcomed this peer last (with several `--server`s, the active one). */
  authorityUrl: string = o.server[0]!,
): Promise<R> {
  if (o.buildTool === undefined || result.universe === null) return result;
  if (o.evidenceFile === undefined && o.universeOutput === undefined) {
    report.warning('--build-tool: no evidence file to read and no build output seen (the CLI sets $TASKSHARD_EVIDENCE_FILE and watches the output; library users pass evidenceFile or universeOutput)');
    return result;
  }
  const evidence = readCacheEvidence(o.buildTool, o.evidenceFile, steps, o.universeOutput?.());
  if (typeof evidence === 'string') {
    report.warning(`--build-tool ${o.buildTool}: no cache evidence: ${evidence}`);
    return result;
  }
  report.event(describeCacheEvidence(evidence));
  if (result.mode === 'shared' && result.cohortId !== null && result.peerId !== null) {
    const problem = await postCacheEvidence(authorityUrl, token, result.cohortId, { peerId: result.peerId, evidence });
    if (problem !== null) report.warning(`cache evidence not recorded by the authority: ${problem}`);
  }
  return { ...result, universe: { ...result.universe, cacheEvidence: evidence } };
}
