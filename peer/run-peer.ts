import { withCacheEvidence, type CacheEvidence } from './cache-evidence.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Writable } from 'node:stream';
import { protocolVersion, type CompleteSummary } from '../shared/protocol.js';
import type { SchemaDef } from '../shared/schema-file.js';
import { defaultBackoff } from './backoff.js';
import { detectCiEnvironment, type Env } from './ci-environment.js';
import { clientVersion } from './client-version.js';
import { readGitFacts } from './git-facts.js';
import { buildLocally } from './local-fallback.js';
import { nameOption, parsePeerOptions, type OptionNaming, type ParsedPeerOptions, type PeerOptions } from './options.js';
import { ProgressTicker } from './progress-ticker.js';
import { resolvePeerLabels, stepsBeyondLabels } from './labels.js';
import { builtElsewhereLine, failedStepLine, formatDuration, formatExit, PeerReport, summaryLine, type CiStyle } from './report.js';
import { writeRunOutputs } from './run-outputs.js';
import { RunRecord } from './run-record.js';
import { loadPeerSchema } from './schema-source.js';
import { PeerSession, type SessionObserver, type SessionOutcome } from './session.js';
import type { BaseHello } from './session-frames.js';
import { resolveSource, type ResolvedSource } from './source-resolver.js';
import { localBuildOrder } from './step-order.js';
import { runTimed, type StepRunner } from './step-runner.js';
import { postUniverseReport } from './universe-report.js';

/** Exit codes: 0 every step resolved and the universe built; 1 a step or the universe failed; 2 usage, schema, COMMAND or (with `strict`) authority problems. */
export type PeerExitCode = 0 | 1 | 2;

export type FailedStep = CompleteSummary['failed'][number];

/** Runner time of one peer, in seconds (see `PeerResult.runner`). */
export interface PeerRunnerTime {
  readonly builtSec: number;
  readonly aloneSec: number;
  readonly spentSec: number;
  readonly savedSec: number;
}

/** Runner time from a `complete` summary; null when the authority did not send its parts. */
export function runnerTimeOf(summary: CompleteSummary): PeerRunnerTime | null {
  if (summary.builtSec === undefined || summary.aloneSec === undefined || summary.spentSec === undefined) return null;
  return { builtSec: summary.builtSec, aloneSec: summary.aloneSec, spentSec: summary.spentSec, savedSec: Math.round((summary.aloneSec - summary.spentSec) * 1000) / 1000 };
}

/** What `runPeer` returns. Step lists are step ids. */
export interface PeerResult {
  readonly exitCode: PeerExitCode;
  readonly peerId: string | null;
  readonly cohortId: string | null;
  /** `shared`: the authority coordinated to the end; `local`: this peer failed open; `none`: it never started. */
  readonly mode: 'shared' | 'local' | 'none';
  /** Why this peer failed open, when it did. */
  readonly failOpenReason: string | null;
  /** What made it fail open: `unreachable`, `unauthorized`, `refused`, `gone`, `untrusted` or `cancelled`. */
  readonly failOpenCause: string | null;
  readonly builtHere: readonly string[];
  readonly builtByOthers: readonly { readonly stepId: string; readonly peerId: string }[];
  readonly fromMemo: readonly string[];
  readonly failed: readonly FailedStep[];
  /** The authority's estimate of build time this peer saved (0 after failing open). */
  readonly savedSec: number;
  /**
   * Runner time, from the authority's `complete`; null when it sent none (an older authority) or
   * the peer failed open. `builtSec`: this peer's own build time; `aloneSec`: building every step
   * alone; `spentSec`: join to complete, building and waiting; `savedSec` = aloneSec - spentSec,
   * negative when waiting cost more than building alone would have.
   */
  readonly runner: PeerRunnerTime | null;
  /** This peer's labels as sent in `hello` (given plus detected), sorted. */
  readonly labels: readonly string[];
  /** Steps no connected peer had the labels for, resolved `unshared` by the authority: nobody built them; the universe covers them. */
  readonly unshared: readonly { readonly stepId: string; readonly reason: string }[];
  /** Steps left to peers with labels this one lacks when it was told `complete` early (it never waits for them). */
  readonly notRunnable: readonly { readonly stepId: string; readonly requires: readonly string[] }[];
  /** The universe build, when it ran. */
  readonly universe: { readonly ok: boolean; readonly exitCode: number | null; readonly durationMs: number; readonly cacheEvidence?: CacheEvidence } | null;
  /** Usage and schema problems (exit 2), one located line each. */
  readonly problems: readonly string[];
  /** The last line the peer printed (`exit 0: ...`), or null when it never started. */
  readonly finalLine: string | null;
}

/**
 * Runs one peer: join the authority's cohort, build the steps it assigns,
 * then the universe; fail open when the authority cannot be used. Resolves
 * with the exit code and a summary; never rejects for expected problems.
 */
export function runPeer(options: PeerOptions): Promise<PeerResult> {
  return runPeerWith(options, 'keys');
}

interface Tally {
  mode: PeerResult['mode'];
  cohortId: string | null;
  failOpenReason: string | null;
  failOpenCause: string | null;
  builtHere: string[];
  builtByOthers: { stepId: string; peerId: string }[];
  fromMemo: string[];
  failed: FailedStep[];
  savedSec: number;
  runner: PeerRunnerTime | null;
  labels: readonly string[];
  unshared: { stepId: string; reason: string }[];
  notRunnable: { stepId: string; requires: readonly string[] }[];
  universe: PeerResult['universe'];
}

/** `runPeer` with problems named as CLI flags (`--cache-id`) or option keys (`cacheId`). */
export async function runPeerWith(input: PeerOptions, naming: OptionNaming): Promise<PeerResult> {
  const fallbackErr = pickWritable(input, 'stderr') ?? process.stderr;
  const usage = (problems: readonly string[], peerId: string | null = null): PeerResult => {
    for (const p of problems) fallbackErr.write(`taskshard peer: ${p}\n`);
    return { ...emptyResult(peerId), exitCode: 2, problems, finalLine: null };
  };

  const parsed = parsePeerOptions(input, naming);
  if (!parsed.ok) return usage(parsed.problems);
  const o = parsed.options;
  const loaded = loadPeerSchema(o.schema);
  if (!loaded.ok) return usage(loaded.problems);
  const env: Env = o.env ?? process.env;
  const token = o.token ?? (env.TASKSHARD_TOKEN?.trim() || null);
  if (token !== null && !/^[\x21-\x7e]{1,512}$/.test(token)) return usage(['TASKSHARD_TOKEN: must be printable ASCII without spaces, at most 512 characters']);

  const ci = detectCiEnvironment(env);
  const labelled = resolvePeerLabels(o.labels, env, process.platform, process.arch);
  if (!labelled.ok) return usage(labelled.problems);
  const labels = labelled.labels;
  const resolved = resolveSource(o, {
    ci,
    git: () => readGitFacts(o.cwd ?? process.cwd()),
    hostName: hostname(),
    processId: process.pid,
    randomSuffix: () => randomBytes(3).toString('hex'),
  });
  if (!resolved.ok) return usage(resolved.problems.map((p) => `${nameOption([p.option], naming)}: ${p.message}`));
  const source = resolved.source;

  const style: CiStyle = ci?.provider === 'github-actions' ? 'github' : ci?.provider === 'gitlab-ci' ? 'gitlab' : null;
  const report = new PeerReport(o.stdout ?? process.stdout, o.stderr ?? process.stderr, style, o.quiet);
  const onSharedFailure = o.onSharedFailure ?? (o.pipelineType === 'dependent' ? 'continue' : 'fail');
  const schema = loaded.schema;
  report.event(`peer ${source.peerId}: schema ${schema.id} (${schema.steps.length} steps, ${loaded.digest.slice(0, 19)}), ${describeSource(source, o)}, authority ${o.server.join(', ')}, labels ${labels.join(' ')}`);
  if (source.baseSha === null && o.pipelineType === 'independent' && !o.isolated && o.cohortKey === undefined) {
    report.warning(
      'NO BASE SHA: this job shares only with jobs that are running right now, never with a finished run (whose cache may be for other sources), and nothing is reused from memo. ' +
        'Pass --base-sha (TASKSHARD_BASE_SHA), run in a git checkout, or name the group with --cohort-key.',
    );
  }

  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort();
  if (o.signal?.aborted) stop.abort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    const now = (): number => performance.now();
    const record = new RunRecord(schema.steps, source.peerId, now);
    const ticker = new ProgressTicker(report, schema.steps, o.progressIntervalSec * 1000, now);
    let warnedVersion = false;
    let activeAuthority = o.server[0]!;
    const observer: SessionObserver = {
      frame(message, from) {
        record.frame(message);
        ticker.frame(message);
        if (message.type !== 'welcome') return;
        activeAuthority = from;
        if (message.server && message.server.version !== clientVersion() && !warnedVersion) {
          warnedVersion = true;
          report.warning(`this peer is taskshard ${clientVersion()} but the authority is ${message.server.version}; get the matching peer: curl -fsSL ${httpBase(from)}/peer.mjs -o peer.mjs`);
        }
        for (const why of message.alone ?? []) report.event(`alone in cohort ${message.cohort.id}: ${why}`);
      },
      stepStarted(stepId) {
        record.stepStarted();
        ticker.stepStarted(stepId);
      },
      stepSettled(stepId, run) {
        record.stepSettled(stepId, run);
        ticker.stepSettled(stepId, run);
      },
    };
    ticker.start();
    let result: PeerResult;
    try {
      result = await drive(o, schema, loaded.digest, source, labels, token, onSharedFailure, report, observer, groupedRunner(o.runner, report), stop.signal);
      if (result.mode === 'shared' && result.cohortId !== null && result.peerId !== null && result.universe !== null) {
        const { ok, exitCode, durationMs } = result.universe;
        const problem = await postUniverseReport(activeAuthority, token, result.cohortId, { peerId: result.peerId, ok, exitCode, durationMs: Math.round(durationMs) });
        if (problem !== null) report.diagnostic(`universe build not reported to the authority (its dashboard shows an inferred bar): ${problem}`);
      }
      result = await withCacheEvidence(result, o, schema.steps, token, report, activeAuthority);
    } finally {
      ticker.stop();
    }
    record.finish();
    writeRunOutputs(record, result, { o, schema, digest: loaded.digest, source, report, env, githubSummary: ci?.provider === 'github-actions' });
    return result;
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function drive(
  o: ParsedPeerOptions,
  schema: SchemaDef,
  digest: string,
  source: ResolvedSource,
  labels: readonly string[],
  token: string | null,
  onSharedFailure: 'fail' | 'continue',
  report: PeerReport,
  observer: SessionObserver,
  runner: StepRunner,
  signal: AbortSignal,
): Promise<PeerResult> {
  const now = (): number => performance.now();
  const tally: Tally = { mode: 'shared', cohortId: null, failOpenReason: null, failOpenCause: null, builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0, runner: null, labels, unshared: [], notRunnable: [], universe: null };
  const done = (exitCode: PeerExitCode, line: string): PeerResult => {
    // Refused is not unreachable: a run that failed open says so on its last line too.
    const full = tally.failOpenReason !== null && exitCode !== 2 ? `${line} (FAILED OPEN, nothing shared: ${tally.failOpenReason})` : line;
    report.groupEnd();
    if (exitCode === 0) report.final(full);
    else report.failure(full);
    return { exitCode, peerId: source.peerId, problems: [], ...tally, finalLine: full };
  };

  const hello: BaseHello = {
    type: 'hello',
    protocol: protocolVersion,
    peerId: source.peerId,
    client: { name: 'taskshard', version: clientVersion() },
    repo: source.repo,
    baseRef: source.baseRef,
    ...(source.baseSha === null ? {} : { baseSha: source.baseSha }),
    ...(source.changeRef === null ? {} : { changeRef: source.changeRef }),
    patchsets: [...source.patchsets],
    pipeline: { name: source.pipelineName, type: o.pipelineType },
    isolated: o.isolated,
    cacheId: o.cacheId,
    ...(o.cohortKey === undefined ? {} : { cohortKey: o.cohortKey }),
    // Other steps' successes batched on the next assign/wait/complete (fewer frames; the session expands them).
    coalescedUpdates: true,
    // And only those it needs: while it waits, and its own. What others built while it was busy comes in `complete`.
    targetedUpdates: true,
    ...(labels.length === 0 ? {} : { labels: [...labels] }),
    ...(source.ci?.jobUrl ? { ciJobUrl: source.ci.jobUrl } : {}),
    schema: {
      id: schema.id,
      digest,
      universe: schema.universe,
      steps: schema.steps.map((s) => ({
        id: s.id,
        target: s.target,
        needs: [...s.needs],
        ...(s.estimateSec === undefined ? {} : { estimateSec: s.estimateSec }),
        ...(s.requires === undefined ? {} : { requires: [...s.requires] }),
      })),
    },
  };
  const session = new PeerSession({
    servers: o.server,
    token,
    hello,
    schema,
    onSharedFailure,
    connectTimeoutMs: o.connectTimeoutSec * 1000,
    patienceMs: o.patienceSec * 1000,
    backoff: defaultBackoff,
    random: Math.random,
    runner,
    report,
    now,
    observer,
  });
  const outcome: SessionOutcome = await session.run(signal);
  tally.cohortId = session.cohortId;
  tally.builtHere = [...session.builtHere];

  if (outcome.kind === 'interrupted') {
    await session.settleRunning();
    return done(1, 'exit 1: interrupted; the running step was stopped');
  }
  if (outcome.kind === 'cannot-start') {
    return done(2, `exit 2: COMMAND could not start (${outcome.startError}) for step ${outcome.stepId}; its lease was released for another peer, not failed`);
  }
  if (outcome.kind === 'shared-failure') {
    const f = outcome.failure;
    await session.settleRunning();
    tally.failed = [{ stepId: f.stepId, peerId: f.peerId, exitCode: f.exitCode ?? null, ...(f.logTail ? { logTail: f.logTail } : {}), reason: f.reason ?? 'failed' }];
    return done(1, `exit 1: shared step ${f.stepId} failed (${describeFailure(f)}); not building the universe (--on-shared-failure fail)`);
  }

  let skip: Set<string>;
  if (outcome.kind === 'complete' && outcome.complete.outcome !== 'cancelled') {
    const { summary, outcome: cohortOutcome } = outcome.complete;
    Object.assign(tally, { builtHere: [...summary.builtHere], builtByOthers: [...summary.builtByOthers], fromMemo: [...summary.fromMemo], failed: [...summary.failed], savedSec: summary.savedSec, runner: runnerTimeOf(summary) });
    // Steps others built while this peer was busy (targeted updates): named here, as they were not as they happened.
    for (const b of summary.builtByOthers) {
      if (!session.updates.has(b.stepId)) report.event(builtElsewhereLine({ type: 'step.update', cohortId: outcome.complete.cohortId, stepId: b.stepId, state: 'succeeded', peerId: b.peerId, fromMemo: false, ...(b.durationMs === undefined ? {} : { durationMs: b.durationMs }) }));
    }
    report.event(summaryLine(summary, cohortOutcome));
    tally.unshared = [...(summary.unshared ?? [])];
    tally.notRunnable = [...(summary.notRunnable ?? [])];
    for (const u of tally.unshared) report.event(`step ${u.stepId} unshared: ${u.reason}`);
    for (const n of tally.notRunnable) report.event(`step ${n.stepId} left to peers with ${n.requires.join(', ')} (this peer lacks them); not waiting for it, the universe build covers it if nobody builds it`);
    if (summary.failed.length > 0) {
      const announced = new Set([...session.updates.values()].filter((u) => u.state === 'failed').map((u) => u.stepId));
      for (const f of summary.failed) if (!announced.has(f.stepId)) report.failure(failedStepLine(f), f.logTail);
      if (onSharedFailure === 'fail') {
        return done(1, `exit 1: ${summary.failed.length} shared step(s) failed: ${summary.failed.map((f) => `${f.stepId} (${describeFailure(f)})`).join(', ')}`);
      }
    }
    return universe(o, schema, runner, report, now, signal, tally, done);
  }

  // Fail-open: the authority is unusable (or cancelled the cohort); build what is left here.
  const reason = outcome.kind === 'complete' ? 'the authority cancelled the cohort' : outcome.detail;
  const cause = outcome.kind === 'complete' ? 'cancelled' : outcome.cause;
  tally.failOpenCause = cause;
  if (o.strict) {
    session.abortRunning('--strict: not failing open');
    await session.settleRunning();
    report.annotateError(`${cause === 'unauthorized' || cause === 'refused' ? 'the authority REFUSED this peer' : 'the authority could not be used'} (--strict): ${reason}`);
    tally.failOpenReason = reason;
    return done(2, `exit 2 (--strict): ${reason}`);
  }
  tally.mode = 'local';
  tally.failOpenReason = reason;
  report.warning(`FAILING OPEN: ${reason}. Building the remaining steps here; sharing is off for this job.`);
  const last = await session.settleRunning();
  tally.builtHere = [...session.builtHere];
  if (signal.aborted) return done(1, 'exit 1: interrupted; the running step was stopped');
  // An aborted run (superseded, cancelled) is not a failure: its step is simply still to build.
  if (last && !last.run.aborted && !last.run.ok) {
    tally.failed = [{ stepId: last.stepId, peerId: source.peerId, exitCode: last.run.exitCode, ...(last.run.logTail ? { logTail: last.run.logTail } : {}), reason: 'failed here after failing open' }];
    return done(1, `exit 1: step ${last.stepId} failed here with ${formatExit(last.run.exitCode)}`);
  }
  if (outcome.kind === 'complete') {
    const s = outcome.complete.summary;
    skip = new Set([...s.builtHere, ...s.builtByOthers.map((b) => b.stepId), ...s.fromMemo, ...session.builtHere]);
  } else {
    skip = new Set(session.builtHere);
    for (const u of session.updates.values()) {
      if (u.state !== 'succeeded') continue;
      skip.add(u.stepId);
      if (u.fromMemo || u.peerId === null) tally.fromMemo.push(u.stepId);
      else if (u.peerId !== source.peerId) tally.builtByOthers.push({ stepId: u.stepId, peerId: u.peerId });
    }
  }
  // Steps that need labels this peer lacks (and what needs them) are the universe build's, as when unshared.
  const beyond = stepsBeyondLabels(schema.steps, new Set(labels));
  if (beyond.size > 0) report.event(`not building ${[...beyond].join(', ')} here: they require labels this peer lacks; the universe build covers them`);
  for (const id of beyond) skip.add(id);
  const order = localBuildOrder(schema.steps, skip);
  report.event(order.length === 0 ? 'every step was already built; nothing left to build here' : `building ${order.length} remaining step(s) here: ${order.map((s) => s.id).join(', ')}`);
  const local = await buildLocally(order, runner, report, now, signal, (stepId, run) => observer.stepSettled(stepId, run));
  tally.builtHere.push(...local.built);
  if (local.interrupted) return done(1, 'exit 1: interrupted; the running step was stopped');
  if (local.failed) {
    const { stepId, run } = local.failed;
    if (run.startError !== null) return done(2, `exit 2: COMMAND could not start (${run.startError}) for step ${stepId}`);
    tally.failed = [{ stepId, peerId: source.peerId, exitCode: run.exitCode, ...(run.logTail ? { logTail: run.logTail } : {}), reason: 'failed here after failing open' }];
    return done(1, `exit 1: step ${stepId} failed here with ${formatExit(run.exitCode)}`);
  }
  return universe(o, schema, runner, report, now, signal, tally, done);
}

async function universe(
  o: ParsedPeerOptions,
  schema: SchemaDef,
  runner: StepRunner,
  report: PeerReport,
  now: () => number,
  signal: AbortSignal,
  tally: Tally,
  done: (exitCode: PeerExitCode, line: string) => PeerResult,
): Promise<PeerResult> {
  const failedNote = tally.failed.length > 0 ? ` (shared step(s) ${tally.failed.map((f) => f.stepId).join(', ')} failed; --on-shared-failure continue)` : '';
  if (!o.universe) {
    if (tally.failed.length > 0) return done(1, `exit 1: universe skipped (--no-universe)${failedNote}`);
    return done(0, 'exit 0: every step resolved; universe skipped (--no-universe)');
  }
  report.event(`universe ${schema.universe} building`);
  const run = await runTimed(runner, { stepId: 'universe', target: schema.universe, phase: 'universe', signal }, now);
  tally.universe = { ok: run.ok && !run.aborted, exitCode: run.exitCode, durationMs: run.durationMs };
  if (run.aborted) return done(1, 'exit 1: interrupted during the universe build');
  if (!run.ok) return done(1, `exit 1: universe FAILED with ${formatExit(run.exitCode)} after ${formatDuration(run.durationMs)}${failedNote}`);
  report.event(`universe finished in ${formatDuration(run.durationMs)}`);
  return done(0, `exit 0: every step resolved and the universe built${failedNote}`);
}

function describeFailure(f: { peerId: string | null; exitCode?: number | null | undefined; reason?: string | undefined }): string {
  return `${f.peerId === null ? 'no peer' : `on peer ${f.peerId}`}, ${formatExit(f.exitCode)}${f.reason ? `: ${f.reason}` : ''}`;
}

function describeSource(source: ResolvedSource, o: ParsedPeerOptions): string {
  const base = source.baseSha === null ? source.baseRef : `${source.baseRef}@${source.baseSha.slice(0, 12)}`;
  const patchsets = source.patchsets.length === 0 ? '' : ` + ${source.patchsets.join(' + ')}`;
  const from = source.ci ? `, detected from ${source.ci.provider}` : source.detectedFrom === 'git' || source.detectedFrom === 'mixed' ? ', partly from git' : '';
  const key = o.cohortKey === undefined ? '' : `, cohort key ${o.cohortKey}`;
  return `${source.repo} ${base}${patchsets}${key}, cache ${o.cacheId}, ${o.pipelineType} pipeline ${source.pipelineName}${o.isolated ? ' (isolated)' : ''}${from}`;
}

function emptyResult(peerId: string | null): Omit<PeerResult, 'exitCode' | 'problems' | 'finalLine'> {
  return { peerId, cohortId: null, mode: 'none', failOpenReason: null, failOpenCause: null, builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0, runner: null, labels: [], unshared: [], notRunnable: [], universe: null };
}

/** Each build in its own collapsible group (GitHub Actions, GitLab CI). */
function groupedRunner(runner: StepRunner, report: PeerReport): StepRunner {
  return async (ctx) => {
    report.groupStart(ctx.phase === 'universe' ? `taskshard: universe ${ctx.target}` : `taskshard: step ${ctx.stepId} (${ctx.target})`);
    try {
      return await runner(ctx);
    } finally {
      report.groupEnd();
    }
  };
}

/** `wss://host/v1/peer` -> `https://host`, where the authority serves /peer.mjs. */
function httpBase(server: string): string {
  const url = new URL(server);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`;
}

function pickWritable(input: unknown, key: 'stdout' | 'stderr'): Writable | null {
  const value = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[key] : undefined;
  return typeof value === 'object' && value !== null && typeof (value as Writable).write === 'function' ? (value as Writable) : null;
}
