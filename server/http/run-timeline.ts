import type { CohortOutcome as StoredOutcome } from '../core/causes.js';
import type { CohortRun, RunLease, RunPeer, RunStep } from './run-reader.js';
import { parseUniverseDetail, universeBuiltKind } from './universe-build.js';

/**
 * The per-run view behind the dashboard's Gantt chart, the trace export and
 * `taskshard cohort`: one lane per peer with a bar per lease (what it built,
 * backup copies, aborted, failed, lost attempts), the gaps where the peer
 * waited because nothing was assignable, its universe build, and the
 * critical path. Pure: the run and `nowMs` in, the view out.
 *
 * A peer builds its universe after the cohort completes. A peer that reports
 * the build (`POST /api/v1/cohorts/:id/universe`, stored as a `universe.built`
 * event) gets its real bar, with its result. For one that does not (an older
 * peer), the bar is inferred and marked so: from completion (or the peer's
 * join, if later) to the peer's `left` event, still open while it is connected.
 */

export const cohortOutcomes = ['succeeded', 'failed', 'cancelled', 'abandoned'] as const;
export type CohortOutcome = (typeof cohortOutcomes)[number];

export type BarKind = 'built' | 'failed' | 'aborted' | 'lost' | 'running' | 'wait' | 'universe';

export interface TimelineBar {
  readonly kind: BarKind;
  readonly stepId: string | null;
  readonly startMs: number;
  readonly endMs: number;
  /** Still going at `nowMs` (a live lease, a peer still building its universe). */
  readonly open: boolean;
  /** A second copy started for a straggler. */
  readonly backup: boolean;
  /** A later attempt after a failed or lost one. */
  readonly retried: boolean;
  readonly attempt: number | null;
  /** On the critical path (the successful lease of a critical step). */
  readonly critical: boolean;
  /** A universe bar the authority inferred (the peer did not report its build); false for every other bar. */
  readonly inferred: boolean;
  /** A reported universe build's result; null for every other bar. */
  readonly ok: boolean | null;
}

export interface TimelineLane {
  readonly peerId: string;
  readonly status: string;
  readonly pipelineName: string;
  /** The CI job's page the peer reported, or null. */
  readonly ciJobUrl: string | null;
  readonly joinedAtMs: number;
  readonly leftAtMs: number | null;
  readonly bars: readonly TimelineBar[];
}

export interface TimelineStep {
  readonly stepId: string;
  readonly target: string;
  readonly needs: readonly string[];
  readonly status: string | null;
  /** The peer whose copy succeeded; null for memo hits and unbuilt steps. */
  readonly builtBy: string | null;
  readonly fromMemo: boolean;
  readonly attempts: number;
  readonly durationMs: number | null;
  readonly estimateSec: number | null;
  readonly critical: boolean;
  readonly failReason: string | null;
  readonly failPeerId: string | null;
  readonly failExitCode: number | null;
  readonly failLogTail: string | null;
}

export interface FailureCause {
  readonly stepId: string;
  readonly peerId: string | null;
  readonly exitCode: number | null;
  readonly reason: string;
  readonly logTail: string | null;
}

export interface RunTotals {
  /** Sum of every lease's time (failed, aborted and backup copies included). */
  readonly buildMs: number;
  /** Sum over peers of the time each was in the cohort (joined to left, or to now): peers x wall. */
  readonly runnerMs: number;
  /** First join (cohort creation) to the last peer leaving, or to now. */
  readonly wallMs: number;
  /** Build time saved: the cohort's own figure (every member building every succeeded step, minus building each once). */
  readonly savedBuildSec: number | null;
  /**
   * Runner time saved against every peer building every succeeded step itself, one after another:
   * per finished peer, (sum of step durations) - (join to universe start). Null until a peer has finished
   * a succeeded run.
   */
  readonly savedRunnerSec: number | null;
  readonly waitMs: number;
}

export interface RunTimeline {
  readonly cohortId: string;
  readonly schemaId: string;
  readonly repo: string;
  readonly baseRef: string;
  /** `--cohort-key` of its peers; null when they were matched by source state. */
  readonly cohortKey: string | null;
  readonly patchsets: readonly string[];
  readonly status: string;
  /** null while the cohort is open. */
  readonly outcome: CohortOutcome | null;
  readonly startedAtMs: number;
  readonly endAtMs: number;
  readonly nowMs: number;
  readonly universe: string;
  readonly lanes: readonly TimelineLane[];
  readonly steps: readonly TimelineStep[];
  /** Step ids from the first to the last on the longest chain of `needs`, by measured duration. */
  readonly criticalPath: readonly string[];
  readonly failures: readonly FailureCause[];
  readonly totals: RunTotals;
}

/** The dashboard's outcome word for the core's typed outcome: a cancel by the authority itself is `abandoned`. */
export function outcomeName(stored: StoredOutcome | null): CohortOutcome | null {
  if (stored === null) return null;
  if (stored.kind === 'cancelled') return stored.by === 'abandoned' ? 'abandoned' : 'cancelled';
  return stored.kind;
}

/** The cohort's outcome: null while open; else what the core recorded when it resolved. */
export function cohortOutcome(run: Pick<CohortRun, 'cohort'>): CohortOutcome | null {
  if (run.cohort.status === 'open') return null;
  const name = outcomeName(run.cohort.storedOutcome);
  if (name === null) throw new Error(`corrupt database: cohort ${run.cohort.cohortId} is ${run.cohort.status} with no recorded outcome`);
  return name;
}

/** Why the run failed: every failed step with its last failure (a dependent failed "needs X" names X). */
export function failureCauses(steps: readonly RunStep[]): FailureCause[] {
  return steps
    .filter((s) => s.status === 'failed')
    .map((s) => ({ stepId: s.stepId, peerId: s.failPeerId, exitCode: s.failExitCode, reason: s.failReason ?? 'failed', logTail: s.failLogTail }));
}

function leaseEnd(lease: RunLease, nowMs: number): number {
  return lease.endedAtMs ?? Math.max(nowMs, lease.startedAtMs);
}

/** Longest chain of `needs` weighted by how long each succeeded step took (memo hits weigh 0). */
export function criticalPath(steps: readonly RunStep[], leases: readonly RunLease[], nowMs: number): string[] {
  const weight = new Map<string, number>();
  for (const s of steps) weight.set(s.stepId, 0);
  for (const l of leases) if (l.outcome === 'succeeded' || l.outcome === null) weight.set(l.stepId, Math.max(weight.get(l.stepId) ?? 0, leaseEnd(l, nowMs) - l.startedAtMs));
  const byId = new Map(steps.map((s) => [s.stepId, s]));
  const best = new Map<string, { total: number; prev: string | null }>();
  const visit = (id: string): { total: number; prev: string | null } => {
    const known = best.get(id);
    if (known) return known;
    let prev: string | null = null;
    let before = 0;
    for (const need of byId.get(id)?.needs ?? []) {
      const t = visit(need).total;
      if (t > before || prev === null) {
        before = t;
        prev = need;
      }
    }
    const result = { total: before + (weight.get(id) ?? 0), prev };
    best.set(id, result);
    return result;
  };
  let end: string | null = null;
  let endTotal = -1;
  for (const s of steps) {
    const t = visit(s.stepId).total;
    if (t > endTotal) {
      endTotal = t;
      end = s.stepId;
    }
  }
  const path: string[] = [];
  for (let id = end; id !== null; id = best.get(id)!.prev) path.unshift(id);
  return endTotal > 0 ? path : [];
}

/** When each peer left (its last `left` or `gone` event), if it did. */
function leftTimes(run: CohortRun): Map<string, number> {
  const left = new Map<string, number>();
  for (const e of run.events) if (e.peerId !== null && (e.kind === 'peer.left' || e.kind === 'peer.gone')) left.set(e.peerId, e.atMs);
  return left;
}

function laneFor(run: CohortRun, peer: RunPeer, leftAtMs: number | null, critical: Set<string>, nowMs: number, outcome: CohortOutcome | null): TimelineLane {
  const failedBefore = new Set<string>();
  const sorted = [...run.leases].sort((a, b) => a.startedAtMs - b.startedAtMs);
  const retried = new Set<string>();
  for (const l of sorted) {
    if (failedBefore.has(l.stepId) && !l.backup) retried.add(l.leaseId);
    if (l.outcome === 'failed' || l.outcome === 'lost') failedBefore.add(l.stepId);
  }
  const bars: TimelineBar[] = [];
  const own = sorted.filter((l) => l.peerId === peer.peerId);
  for (const l of own) {
    const kind: BarKind = l.outcome === null ? 'running' : l.outcome === 'succeeded' ? 'built' : l.outcome;
    bars.push({
      kind,
      stepId: l.stepId,
      startMs: l.startedAtMs,
      endMs: leaseEnd(l, nowMs),
      open: l.outcome === null,
      backup: l.backup,
      retried: retried.has(l.leaseId),
      attempt: l.attempt,
      critical: l.outcome === 'succeeded' && critical.has(l.stepId),
      inferred: false,
      ok: null,
    });
  }
  // Waits: the peer was in the cohort, the cohort was open, and the peer held no lease.
  const workEnd = Math.min(run.cohort.resolvedAtMs ?? nowMs, leftAtMs ?? nowMs, nowMs);
  let cursor = peer.joinedAtMs;
  const waitBars: TimelineBar[] = [];
  const addWait = (from: number, to: number): void => {
    if (to > from) waitBars.push({ kind: 'wait', stepId: null, startMs: from, endMs: to, open: false, backup: false, retried: false, attempt: null, critical: false, inferred: false, ok: null });
  };
  for (const l of own) {
    addWait(cursor, Math.min(l.startedAtMs, workEnd));
    cursor = Math.max(cursor, leaseEnd(l, nowMs));
  }
  addWait(cursor, workEnd);
  if (waitBars.length > 0) {
    const last = waitBars[waitBars.length - 1]!;
    if (workEnd === nowMs && run.cohort.resolvedAtMs === null && leftAtMs === null && last.endMs === nowMs) waitBars[waitBars.length - 1] = { ...last, open: true };
  }
  bars.push(...waitBars);
  const reported = run.events.find((e) => e.kind === universeBuiltKind && e.peerId === peer.peerId);
  if (reported) {
    const d = parseUniverseDetail(reported.detail, `cohort ${run.cohort.cohortId}'s ${universeBuiltKind} event of peer ${peer.peerId}`);
    bars.push({ kind: 'universe', stepId: null, startMs: d.startedAtMs, endMs: reported.atMs, open: false, backup: false, retried: false, attempt: null, critical: false, inferred: false, ok: d.ok });
  } else if (outcome === 'succeeded' && run.cohort.resolvedAtMs !== null) {
    const start = Math.max(run.cohort.resolvedAtMs, peer.joinedAtMs);
    const end = leftAtMs ?? (peer.status === 'connected' ? nowMs : null);
    if (end !== null && end >= start) {
      bars.push({ kind: 'universe', stepId: null, startMs: start, endMs: end, open: leftAtMs === null, backup: false, retried: false, attempt: null, critical: false, inferred: true, ok: null });
    }
  }
  bars.sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
  return { peerId: peer.peerId, status: peer.status, pipelineName: peer.pipelineName, ciJobUrl: peer.ciJobUrl, joinedAtMs: peer.joinedAtMs, leftAtMs, bars };
}

/** Builds the timeline of a run as of `nowMs`. */
export function runTimeline(run: CohortRun, nowMs: number): RunTimeline {
  const outcome = cohortOutcome(run);
  const path = criticalPath(run.steps, run.leases, nowMs);
  const critical = new Set(path);
  const left = leftTimes(run);
  const lanes = run.peers.map((p) => laneFor(run, p, left.get(p.peerId) ?? null, critical, nowMs, outcome));
  // A reported universe build holds the runner past the peer's leaving the cohort.
  const reportedUniverse = (lane: TimelineLane): TimelineBar | undefined => lane.bars.find((b) => b.kind === 'universe' && !b.inferred);
  const peerEnd = (lane: TimelineLane): number =>
    Math.max(lane.leftAtMs ?? (lane.status === 'connected' || lane.status === 'disconnected' ? nowMs : (run.cohort.resolvedAtMs ?? nowMs)), reportedUniverse(lane)?.endMs ?? 0);
  const endAtMs = Math.max(run.cohort.createdAtMs, run.cohort.resolvedAtMs ?? nowMs, ...lanes.map(peerEnd), ...run.leases.map((l) => leaseEnd(l, nowMs)));
  const buildMs = run.leases.reduce((sum, l) => sum + (leaseEnd(l, nowMs) - l.startedAtMs), 0);
  const runnerMs = lanes.reduce((sum, lane) => sum + Math.max(0, peerEnd(lane) - lane.joinedAtMs), 0);
  const waitMs = lanes.reduce((sum, lane) => sum + lane.bars.filter((b) => b.kind === 'wait').reduce((s, b) => s + (b.endMs - b.startMs), 0), 0);
  const successMs = new Map<string, number>();
  for (const l of run.leases) if (l.outcome === 'succeeded') successMs.set(l.stepId, (l.endedAtMs ?? l.startedAtMs) - l.startedAtMs);
  const everyStepMs = [...successMs.values()].reduce((a, b) => a + b, 0);
  let savedRunnerMs: number | null = null;
  if (outcome === 'succeeded' && run.cohort.resolvedAtMs !== null) {
    for (const lane of lanes) {
      if (lane.leftAtMs === null) continue;
      const universeStart = reportedUniverse(lane)?.startMs ?? Math.max(run.cohort.resolvedAtMs, lane.joinedAtMs);
      savedRunnerMs = (savedRunnerMs ?? 0) + everyStepMs - (universeStart - lane.joinedAtMs);
    }
  }
  const steps = run.steps.map(
    (s): TimelineStep => ({
      stepId: s.stepId,
      target: s.target,
      needs: s.needs,
      status: s.status,
      builtBy: s.fromMemo ? null : s.builtBy,
      fromMemo: s.fromMemo,
      attempts: s.attempts,
      durationMs: s.durationMs,
      estimateSec: s.estimateSec,
      critical: critical.has(s.stepId),
      failReason: s.failReason,
      failPeerId: s.failPeerId,
      failExitCode: s.failExitCode,
      failLogTail: s.failLogTail,
    }),
  );
  return {
    cohortId: run.cohort.cohortId,
    schemaId: run.cohort.schemaId,
    repo: run.cohort.repo,
    baseRef: run.cohort.baseRef,
    cohortKey: run.cohort.cohortKey,
    patchsets: run.cohort.patchsets,
    status: run.cohort.status,
    outcome,
    startedAtMs: run.cohort.createdAtMs,
    endAtMs,
    nowMs,
    universe: run.cohort.universe,
    lanes,
    steps,
    criticalPath: path,
    failures: failureCauses(run.steps),
    totals: {
      buildMs,
      runnerMs,
      wallMs: endAtMs - run.cohort.createdAtMs,
      savedBuildSec: run.cohort.secondsSaved,
      savedRunnerSec: savedRunnerMs === null ? null : Math.round(savedRunnerMs) / 1000,
      waitMs,
    },
  };
}
