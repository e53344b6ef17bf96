import type { z } from 'zod';
import type { cacheEvidenceSchema, CompleteSummary, ServerMessage } from '../shared/protocol.js';
import type { StepDef } from '../shared/schema-file.js';
import { formatDuration, runnerTimeText } from './report.js';
import type { SessionObserver } from './session.js';
import type { StepRun } from './step-runner.js';

/**
 * What happened to every step, as this peer saw it, for `--report FILE`
 * (JSON) and the GitHub step summary (a markdown table). "Waited" is time this
 * peer spent idle while the step was running elsewhere (from `wait` frames).
 */

/**
 * `unshared`: no connected peer had the labels it requires, nobody built it (the universe covers it);
 * `needs-labels`: still unresolved when this peer, lacking its labels, was told `complete` early.
 */
export type StepOutcomeName = 'succeeded' | 'failed' | 'stopped' | 'not-run' | 'unshared' | 'needs-labels';

export interface StepRecord {
  stepId: string;
  target: string;
  outcome: StepOutcomeName;
  /** Who built (or failed) it; null when reused from memo or not run. */
  builtBy: string | null;
  builtHere: boolean;
  fromMemo: boolean;
  durationMs: number | null;
  exitCode: number | null;
  waitedMs: number;
  /** Why it is `unshared`, or the labels it requires when `needs-labels`. */
  reason?: string;
}

export interface FailOpenRecord {
  /** `unreachable`, `unauthorized` (token refused), `refused` (path, protocol, peer), `gone`, `untrusted`, `cancelled`. */
  readonly cause: string;
  readonly reason: string;
}

export interface RunReportJson {
  readonly format: 'taskshard-peer-report/1';
  readonly version: string;
  readonly serverVersion: string | null;
  readonly peerId: string | null;
  /** This peer's labels as sent in hello (given plus detected). */
  readonly labels: readonly string[];
  readonly cohortId: string | null;
  readonly cohortPeers: number | null;
  readonly schema: { readonly id: string; readonly digest: string };
  readonly source: { readonly repo: string; readonly baseRef: string; readonly baseSha: string | null; readonly patchsets: readonly string[]; readonly cohortKey: string | null } | null;
  readonly mode: 'shared' | 'local' | 'none';
  readonly exitCode: number;
  readonly finalLine: string;
  readonly failOpen: FailOpenRecord | null;
  readonly steps: readonly StepRecord[];
  readonly totals: {
    readonly steps: number;
    readonly builtHere: number;
    readonly builtByOthers: number;
    readonly fromMemo: number;
    readonly failed: number;
    /** Steps resolved `unshared` (nobody had the labels) and steps left to peers with labels this one lacks. */
    readonly unshared: number;
    readonly needsLabels: number;
    /** Build time saved (s): steps others built or the memo had, which this peer did not build. */
    readonly savedSec: number;
    readonly waitedMs: number;
    readonly wallMs: number;
    /**
     * Runner time, from the authority's `complete` (null when it did not send
     * it, or the peer failed open): this peer's own build time, what building
     * every step alone would take, its time from joining to complete (building
     * and waiting), and the difference, negative when waiting cost more.
     */
    readonly runner: { readonly builtSec: number; readonly aloneSec: number; readonly spentSec: number; readonly savedSec: number } | null;
  };
  readonly universe: {
    readonly ok: boolean;
    readonly exitCode: number | null;
    readonly durationMs: number;
    /**
     * With `--build-tool`, when the universe build left a record the peer could read: what it took
     * from the remote cache, in the tool's terms (actions or tasks), and the shared steps that were
     * not cache hits here. Absent otherwise.
     */
    readonly cacheEvidence?: z.infer<typeof cacheEvidenceSchema>;
  } | null;
}

export class RunRecord implements SessionObserver {
  readonly steps = new Map<string, StepRecord>();
  cohortId: string | null = null;
  cohortPeers: number | null = null;
  serverVersion: string | null = null;
  private idleSinceMs: number | null = null;
  private heldByOthers: readonly string[] = [];
  private waitedMs = 0;
  private readonly startedAtMs: number;
  private summary: CompleteSummary | null = null;

  constructor(
    steps: readonly StepDef[],
    private readonly peerId: string,
    private readonly now: () => number,
  ) {
    for (const s of steps) this.steps.set(s.id, { stepId: s.id, target: s.target, outcome: 'not-run', builtBy: null, builtHere: false, fromMemo: false, durationMs: null, exitCode: null, waitedMs: 0 });
    this.startedAtMs = now();
  }

  frame(message: ServerMessage): void {
    switch (message.type) {
      case 'welcome':
        this.cohortId = message.cohort.id;
        this.cohortPeers = message.cohort.peers;
        this.serverVersion = message.server?.version ?? this.serverVersion;
        for (const s of message.cohort.succeeded) this.resolve(s.stepId, { outcome: 'succeeded', builtBy: s.peerId, fromMemo: s.fromMemo, builtHere: s.peerId === this.peerId });
        return;
      case 'wait':
        this.endIdle();
        this.idleSinceMs = this.now();
        this.heldByOthers = message.running.map((r) => r.stepId);
        return;
      case 'complete':
        this.summary = message.summary;
        // With targeted updates a busy peer is not told of others' successes as they happen: the summary names them.
        for (const b of message.summary.builtByOthers) {
          if (this.steps.get(b.stepId)?.outcome === 'not-run') this.resolve(b.stepId, { outcome: 'succeeded', builtBy: b.peerId, builtHere: false, fromMemo: false, ...(b.durationMs === undefined ? {} : { durationMs: b.durationMs }) });
        }
        for (const id of message.summary.fromMemo) if (this.steps.get(id)?.outcome === 'not-run') this.resolve(id, { outcome: 'succeeded', builtBy: null, builtHere: false, fromMemo: true });
        for (const u of message.summary.unshared ?? []) this.resolve(u.stepId, { outcome: 'unshared', reason: u.reason });
        for (const n of message.summary.notRunnable ?? []) this.resolve(n.stepId, { outcome: 'needs-labels', reason: `requires ${n.requires.join(', ')}` });
        this.endIdle();
        return;
      case 'assign':
        this.endIdle();
        return;
      case 'step.update':
        if (message.state === 'succeeded' || message.state === 'failed') {
          this.resolve(message.stepId, {
            outcome: message.state,
            builtBy: message.peerId,
            fromMemo: message.fromMemo,
            builtHere: message.peerId === this.peerId,
            ...(message.durationMs === undefined ? {} : { durationMs: message.durationMs }),
            ...(message.exitCode === undefined ? {} : { exitCode: message.exitCode }),
          });
        }
        return;
      default:
        return;
    }
  }

  stepStarted(): void {
    this.endIdle();
  }

  stepSettled(stepId: string, run: StepRun): void {
    const outcome: StepOutcomeName = run.aborted ? 'stopped' : run.ok ? 'succeeded' : 'failed';
    const current = this.steps.get(stepId);
    // A stopped copy (superseded) does not overwrite what the winner recorded.
    if (outcome === 'stopped' && current && current.outcome !== 'not-run') return;
    this.resolve(stepId, { outcome, builtBy: this.peerId, builtHere: true, fromMemo: false, durationMs: run.durationMs, exitCode: run.exitCode });
  }

  /** The run is over: idle time so far counts. */
  finish(): void {
    this.endIdle();
  }

  toJson(input: Omit<RunReportJson, 'format' | 'steps' | 'totals' | 'cohortId' | 'cohortPeers' | 'serverVersion' | 'peerId'> & { readonly peerId: string | null; readonly savedSec: number }): RunReportJson {
    const steps = [...this.steps.values()];
    const { savedSec, ...rest } = input;
    return {
      format: 'taskshard-peer-report/1',
      ...rest,
      serverVersion: this.serverVersion,
      cohortId: this.cohortId,
      cohortPeers: this.cohortPeers,
      steps,
      totals: {
        steps: steps.length,
        builtHere: steps.filter((s) => s.builtHere && s.outcome === 'succeeded').length,
        builtByOthers: steps.filter((s) => !s.builtHere && !s.fromMemo && s.outcome === 'succeeded').length,
        fromMemo: steps.filter((s) => s.fromMemo).length,
        failed: steps.filter((s) => s.outcome === 'failed').length,
        unshared: steps.filter((s) => s.outcome === 'unshared').length,
        needsLabels: steps.filter((s) => s.outcome === 'needs-labels').length,
        savedSec,
        waitedMs: this.waitedMs,
        wallMs: Math.round(this.now() - this.startedAtMs),
        runner: runnerTotals(input.mode === 'shared' ? this.summary : null),
      },
    };
  }

  private resolve(stepId: string, patch: Partial<StepRecord>): void {
    const current = this.steps.get(stepId);
    if (current) Object.assign(current, patch);
  }

  private endIdle(): void {
    if (this.idleSinceMs === null) return;
    const ms = Math.max(0, Math.round(this.now() - this.idleSinceMs));
    this.waitedMs += ms;
    for (const id of this.heldByOthers) {
      const s = this.steps.get(id);
      if (s) s.waitedMs += ms;
    }
    this.idleSinceMs = null;
    this.heldByOthers = [];
  }
}

function runnerTotals(summary: CompleteSummary | null): RunReportJson['totals']['runner'] {
  if (!summary || summary.builtSec === undefined || summary.aloneSec === undefined || summary.spentSec === undefined) return null;
  const savedSec = Math.round((summary.aloneSec - summary.spentSec) * 1000) / 1000;
  return { builtSec: summary.builtSec, aloneSec: summary.aloneSec, spentSec: summary.spentSec, savedSec };
}

/** The GitHub step summary: a headline and one table row per step. */
export function stepSummaryMarkdown(report: RunReportJson): string {
  const t = report.totals;
  const lines = [
    `### taskshard: ${report.exitCode === 0 ? 'passed' : 'FAILED'} (exit ${report.exitCode}) — schema \`${report.schema.id}\`${report.cohortId ? `, cohort \`${report.cohortId}\`` : ''}`,
    '',
    report.failOpen ? `> **Failed open** (${report.failOpen.cause}): ${report.failOpen.reason}. Nothing was shared.\n` : '',
    `Built here ${t.builtHere} · by others ${t.builtByOthers} · from memo ${t.fromMemo} · failed ${t.failed} · waited ${formatDuration(t.waitedMs)} · build time saved ${formatDuration(t.savedSec * 1000)} · ${runnerLine(t.runner)}`,
    '',
    '| step | outcome | built by | duration | waited |',
    '|---|---|---|---|---|',
    ...report.steps.map((s) => {
      const by = s.fromMemo ? 'memo' : s.builtBy === null ? '—' : s.builtHere ? `**${s.builtBy}** (here)` : s.builtBy;
      return `| \`${s.stepId}\` | ${s.outcome} | ${by} | ${s.durationMs === null ? '—' : formatDuration(s.durationMs)} | ${s.waitedMs === 0 ? '—' : formatDuration(s.waitedMs)} |`;
    }),
    '',
    `\`${report.finalLine}\``,
    '',
  ];
  return lines.filter((l, i) => !(l === '' && lines[i - 1] === '')).join('\n');
}

/** Runner time in the step summary, worded as on the peer's final summary line. */
function runnerLine(runner: RunReportJson['totals']['runner']): string {
  if (runner === null) return 'runner time saved: not reported';
  return runnerTimeText({ builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0, aloneSec: runner.aloneSec, spentSec: runner.spentSec });
}
