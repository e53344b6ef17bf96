import type { Writable } from 'node:stream';
import { z } from 'zod';
import { boundedText, peerIdSchema } from '../shared/ids.js';
import { formatJsonPath } from '../shared/json-text.js';
import { limits } from '../shared/limits.js';
import { pipelineTypeSchema } from '../shared/protocol.js';
import { problemsFromZod } from '../shared/zod-issues.js';
import type { StepRunner } from './step-runner.js';

/**
 * Options of `runPeer`, the same as the CLI's flags (camelCase), with a
 * callback `runner` in place of COMMAND. Parsed once with zod and frozen;
 * every problem is listed, each naming its option (or its flag, for the CLI).
 */

const ref = boundedText(limits.maxRefLength, 'a ref');
const name = boundedText(limits.maxNameLength, 'a name');

/** `ws://host:port` (the `/v1/peer` path is added when absent); `http(s)://` is accepted as `ws(s)://`. */
const serverUrlSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(2048)
  .transform((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a URL such as ws://taskshard.example:8080, got "${value}"` });
      return z.NEVER;
    }
    const scheme = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }[url.protocol];
    if (!scheme) {
      ctx.addIssue({ code: 'custom', message: `must be a ws:// or wss:// URL, got "${url.protocol}"` });
      return z.NEVER;
    }
    if (url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: 'must not carry credentials; pass the token with --token or TASKSHARD_TOKEN' });
      return z.NEVER;
    }
    url.protocol = scheme;
    if (url.pathname === '' || url.pathname === '/') url.pathname = '/v1/peer';
    return url.toString();
  });

/** Most authorities one peer lists (an active one and its standbys). */
const maxServers = 8;

/**
 * One authority URL, several separated by commas, or a list of them (each may hold commas too);
 * parsed to the normalized URLs in order. A problem names the entry (`--server[1]`) when there are several.
 */
const serverListSchema = z
  .union([z.string(), z.array(z.string()).min(1, 'must list at least one authority URL')], { error: 'must be a URL or a list of URLs' })
  .transform((value, ctx) => {
    const entries = (typeof value === 'string' ? [value] : value).flatMap((v) => v.split(',')).map((v) => v.trim());
    if (entries.length > maxServers) {
      ctx.addIssue({ code: 'custom', message: `must list at most ${maxServers} authorities, got ${entries.length}` });
      return z.NEVER;
    }
    const urls: string[] = [];
    entries.forEach((entry, i) => {
      const path = entries.length === 1 ? [] : [i];
      const parsed = serverUrlSchema.safeParse(entry);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path });
      } else if (urls.includes(parsed.data)) {
        ctx.addIssue({ code: 'custom', message: `lists ${parsed.data} twice`, path });
      } else {
        urls.push(parsed.data);
      }
    });
    return Object.freeze(urls) as readonly string[];
  });

const isFunction = (v: unknown): boolean => typeof v === 'function';
const isWritable = (v: unknown): boolean => typeof v === 'object' && v !== null && typeof (v as Writable).write === 'function';

export const peerOptionsSchema = z.strictObject({
  /**
   * Authority URL, e.g. `ws://taskshard.internal:8080`; or several (a list, or one string with commas):
   * the active authority and its standbys, tried in order (see peer/server-list.ts). Parsed to a list.
   */
  server: serverListSchema,
  /** Schema file path, or an already-parsed schema object. */
  schema: z.union([z.string().min(1, 'must not be empty'), z.record(z.string(), z.unknown())]),
  /** Remote cache identity; peers share only with peers of the same cache. */
  cacheId: name,
  peerId: peerIdSchema.optional(),
  repo: boundedText(limits.maxRepoLength, 'a repo').optional(),
  baseRef: ref.optional(),
  baseSha: z
    .string()
    .regex(/^[0-9a-fA-F]{7,64}$/, 'must be a hex commit sha (7 to 64 hex digits)')
    .transform((s) => s.toLowerCase())
    .optional(),
  changeRef: ref.optional(),
  patchsets: z.array(ref).max(limits.maxPatchsets, `must list at most ${limits.maxPatchsets} patchsets`).default([]),
  /** Names the group explicitly: peers with the same key (and repo, cache id, schema) share whatever their refs. */
  cohortKey: name.optional(),
  /**
   * What kind of machine this is (`gpu`, `arch:arm64`; comma-separated entries are split); the CLI's
   * `--label`. Absent: env `TASKSHARD_LABELS`. `os:`, `arch:` and `ci:` labels are added either way.
   */
  labels: z.array(z.string().max(1024)).max(64).optional(),
  pipeline: name.optional(),
  pipelineType: pipelineTypeSchema.default('independent'),
  isolated: z.boolean().default(false),
  /** Peer token (Bearer on the upgrade); the CLI falls back to env TASKSHARD_TOKEN. */
  token: z.string().min(1, 'must not be empty').max(512).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
  /** Run the universe build after the cohort is complete. Default true. */
  universe: z.boolean().default(true),
  /** Give up on reaching the authority at start after this many seconds and build everything here. Default 10. */
  connectTimeoutSec: z.number().positive().max(3600).default(10),
  /** Give up on a lost authority after this many seconds without it and build the rest here. Default 60. */
  patienceSec: z.number().min(0).max(86_400).default(60),
  /** A shared step failed for good: `fail` exits 1 at once; `continue` goes on and lets the universe decide. Default: fail for independent, continue for dependent pipelines. */
  onSharedFailure: z.enum(['fail', 'continue']).optional(),
  /** Exit 2 instead of failing open. */
  strict: z.boolean().default(false),
  /** Read the universe build's cache summary from `evidenceFile` and report it (see peer/cache-evidence.ts). */
  buildTool: z.enum(['bazel', 'turbo', 'auto']).optional(),
  /** Where the universe build leaves its record (Bazel's execution log, turbo's run summary); the CLI sets `$TASKSHARD_EVIDENCE_FILE`. */
  evidenceFile: z.string().min(1).optional(),
  /** The universe build's output lines a tool's cache summary is on, read when it left no record (the CLI collects them: SummaryLineCollector). */
  universeOutput: z.custom<() => string>(isFunction, 'must be a function () => string').optional(),
  /** Write a JSON summary of the run to this file. */
  report: z.string().min(1, 'must not be empty').optional(),
  /** Print only assignments, failures and the final line (no events, warnings, progress lines or diagnostics). */
  quiet: z.boolean().default(false),
  /** While waiting, a progress line at least this often. Default 60. */
  progressIntervalSec: z.number().min(1).max(3600).default(60),
  runner: z.custom<StepRunner>(isFunction, 'must be a function (ctx) => Promise<{ ok, exitCode, logTail? }>'),
  /** Environment for CI detection and the token fallback (default `process.env`). */
  env: z.record(z.string(), z.string().optional()).optional(),
  /** Working directory for the git fallback (default `process.cwd()`). */
  cwd: z.string().min(1).optional(),
  /** Where event lines and diagnostics go (default the process's stdout and stderr). */
  stdout: z.custom<Writable>(isWritable, 'must be a writable stream').optional(),
  stderr: z.custom<Writable>(isWritable, 'must be a writable stream').optional(),
  /** Aborting it stops the peer: the running step's process group is killed, the authority told `bye`, exit 1. */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'must be an AbortSignal').optional(),
});

export type PeerOptions = z.input<typeof peerOptionsSchema>;
export type ParsedPeerOptions = Readonly<z.output<typeof peerOptionsSchema>>;

/** The CLI flag of each option, for messages that name what the user typed. */
export const peerOptionFlags: Readonly<Record<string, string>> = Object.freeze({
  server: '--server',
  schema: '--schema',
  cacheId: '--cache-id',
  peerId: '--peer-id',
  repo: '--repo',
  baseRef: '--base-ref',
  baseSha: '--base-sha',
  changeRef: '--change-ref',
  patchsets: '--patchset',
  cohortKey: '--cohort-key',
  labels: '--label',
  pipeline: '--pipeline',
  pipelineType: '--pipeline-type',
  isolated: '--isolated',
  token: '--token',
  universe: '--no-universe',
  connectTimeoutSec: '--connect-timeout',
  patienceSec: '--patience',
  onSharedFailure: '--on-shared-failure',
  strict: '--strict',
  buildTool: '--build-tool',
  evidenceFile: 'TASKSHARD_EVIDENCE_FILE',
  report: '--report',
  quiet: '--quiet',
  progressIntervalSec: '--progress-interval',
  runner: 'COMMAND',
});

export type OptionNaming = 'keys' | 'flags';

/** `--cache-id` or `cacheId`, plus the rest of the path (`--patchset[2]`). */
export function nameOption(path: readonly (string | number)[], naming: OptionNaming): string {
  const [head, ...rest] = path;
  if (head === undefined) return 'options';
  const first = naming === 'flags' ? (peerOptionFlags[String(head)] ?? String(head)) : String(head);
  return rest.length === 0 ? first : `${first}${formatJsonPath(rest).replace(/^(?!\[)/, '.')}`;
}

export type OptionsParse = { readonly ok: true; readonly options: ParsedPeerOptions } | { readonly ok: false; readonly problems: readonly string[] };

export function parsePeerOptions(input: unknown, naming: OptionNaming = 'keys'): OptionsParse {
  const parsed = peerOptionsSchema.safeParse(input, { reportInput: true });
  if (parsed.success) return { ok: true, options: Object.freeze(parsed.data) };
  const problems = problemsFromZod(parsed.error).map((p) => `${nameOption(p.path, naming)}: ${p.message}`);
  return { ok: false, problems };
}
