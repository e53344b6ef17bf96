import { z } from 'zod';
import { formatDuration } from '../peer/report.js';
import { normalizeRepo } from '../shared/repo-url.js';

/**
 * What `taskshard cohorts` and `taskshard cohort ID` read from the HTTP API
 * (validated: only the fields printed) and how they print it. Pure: JSON in, lines out.
 */

const outcome = z.enum(['succeeded', 'failed', 'cancelled', 'abandoned']).nullable();

export const cohortListSchema = z.object({
  cohorts: z.array(
    z.object({
      id: z.string(),
      schemaId: z.string(),
      repo: z.string(),
      baseRef: z.string(),
      patchsets: z.array(z.string()),
      pipelineType: z.string(),
      status: z.string(),
      outcome,
      createdAt: z.string(),
      secondsSaved: z.number().nullable(),
      steps: z.object({ total: z.number(), succeeded: z.number(), failed: z.number() }),
      peers: z.number(),
    }),
  ),
});
export type CohortList = z.infer<typeof cohortListSchema>;

const bar = z.object({ kind: z.string(), stepId: z.string().nullable(), startMs: z.number(), endMs: z.number(), open: z.boolean() });

export const timelineSchema = z.object({
  cohortId: z.string(),
  schemaId: z.string(),
  repo: z.string(),
  baseRef: z.string(),
  patchsets: z.array(z.string()),
  outcome,
  lanes: z.array(z.object({ peerId: z.string(), status: z.string(), bars: z.array(bar) })),
  steps: z.array(
    z.object({
      stepId: z.string(),
      status: z.string().nullable(),
      builtBy: z.string().nullable(),
      fromMemo: z.boolean(),
      attempts: z.number(),
      durationMs: z.number().nullable(),
      estimateSec: z.number().nullable(),
      critical: z.boolean(),
    }),
  ),
  failures: z.array(z.object({ stepId: z.string(), peerId: z.string().nullable(), exitCode: z.number().nullable(), reason: z.string(), logTail: z.string().nullable() })),
  totals: z.object({ buildMs: z.number(), runnerMs: z.number(), wallMs: z.number(), waitMs: z.number(), savedBuildSec: z.number().nullable(), savedRunnerSec: z.number().nullable() }),
});
export type TimelineText = z.infer<typeof timelineSchema>;

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function columns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

const sec = (s: number | null): string => (s === null ? '-' : formatDuration(s * 1000));
const ms = (m: number | null): string => (m === null ? '-' : formatDuration(m));

/** Cohorts, newest first, filtered by repo when given. */
export function cohortListLines(list: CohortList, repo: string | null): string[] {
  // The authority stores repos normalized (shared/repo-url.ts); any spelling of the repo finds them.
  const shown = list.cohorts.filter((c) => repo === null || normalizeRepo(c.repo) === normalizeRepo(repo));
  if (shown.length === 0) return [repo === null ? 'no cohorts' : `no cohorts of repo ${repo}`];
  return columns([
    ['COHORT', 'SCHEMA', 'REPO', 'REFS', 'PIPELINE', 'PEERS', 'STEPS', 'OUTCOME', 'SAVED', 'CREATED'],
    ...shown.map((c) => [
      c.id,
      c.schemaId,
      c.repo,
      [c.baseRef, ...c.patchsets].join('+'),
      c.pipelineType,
      String(c.peers),
      `${c.steps.succeeded + c.steps.failed}/${c.steps.total}`,
      c.outcome ?? 'running',
      sec(c.secondsSaved),
      c.createdAt,
    ]),
  ]);
}

/** GET /api/v1/cohorts/:id/cache-evidence: what each peer's universe took from the remote cache. */
export const cacheEvidenceListSchema = z.object({
  peers: z.array(z.object({ peerId: z.string(), tool: z.string(), hits: z.number(), misses: z.number(), missedSteps: z.array(z.string()), source: z.string() })),
});

/** One run: header, totals, one line per peer, one per step, failures with their log tails, cache evidence. */
export function cohortRunLines(t: TimelineText, pageUrl: string, evidence: z.infer<typeof cacheEvidenceListSchema>['peers'] = []): string[] {
  const lines: string[] = [];
  lines.push(`cohort ${t.cohortId}  ${t.outcome ?? 'running'}  (schema ${t.schemaId}, ${t.repo} ${[t.baseRef, ...t.patchsets].join('+')})`);
  lines.push(`page ${pageUrl}`);
  const tot = t.totals;
  lines.push(
    `wall ${ms(tot.wallMs)} · build time ${ms(tot.buildMs)} · runner time ${ms(tot.runnerMs)} · waiting ${ms(tot.waitMs)} · saved: build ${sec(tot.savedBuildSec)}, runner ${sec(tot.savedRunnerSec)}`,
  );
  lines.push('');
  const sum = (bars: readonly z.infer<typeof bar>[], kind: string): number => bars.filter((b) => b.kind === kind).reduce((a, b) => a + b.endMs - b.startMs, 0);
  lines.push(
    ...columns([
      ['PEER', 'STATUS', 'BUILT', 'FAILED/LOST', 'WAITED', 'UNIVERSE', 'NOW'],
      ...t.lanes.map((lane) => {
        const built = lane.bars.filter((b) => b.kind === 'built').map((b) => b.stepId ?? '?');
        const bad = lane.bars.filter((b) => b.kind === 'failed' || b.kind === 'lost').map((b) => `${b.stepId ?? '?'} (${b.kind})`);
        const open = lane.bars.find((b) => b.open);
        const now = open ? (open.kind === 'running' ? `building ${open.stepId ?? '?'}` : open.kind === 'universe' ? 'universe build' : 'waiting') : '-';
        return [lane.peerId, lane.status, built.join(', ') || '-', bad.join(', ') || '-', ms(sum(lane.bars, 'wait')), ms(sum(lane.bars, 'universe')), now];
      }),
    ]),
  );
  lines.push('');
  lines.push(
    ...columns([
      ['STEP', 'STATUS', 'BUILT BY', 'ATTEMPTS', 'DURATION', 'ESTIMATE', ''],
      ...t.steps.map((s) => [s.stepId, s.status ?? '-', s.fromMemo ? 'memo' : (s.builtBy ?? '-'), String(s.attempts), ms(s.durationMs), sec(s.estimateSec), s.critical ? 'critical path' : '']),
    ]),
  );
  for (const f of t.failures) {
    lines.push('', `failed: ${f.stepId}: ${f.reason}${f.peerId ? ` (last on ${f.peerId}${f.exitCode === null ? '' : `, exit ${f.exitCode}`})` : ''}`);
    if (f.logTail) lines.push(...f.logTail.replace(/\n$/, '').split('\n').map((l) => `  | ${l}`));
  }
  if (evidence.length > 0) {
    lines.push('', "cache evidence (each peer's universe build, in its build tool's words):");
    lines.push(
      ...columns([
        ['PEER', 'TOOL', 'FROM CACHE', 'RAN HERE', 'SHARED STEPS NOT FROM THE CACHE'],
        ...evidence.map((e) => [e.peerId, e.tool, String(e.hits), String(e.misses), e.source === 'output' ? 'unknown (summary line only)' : e.missedSteps.join(', ') || 'none']),
      ]),
    );
  }
  return lines;
}
