/**
 * The JSON the dashboard reads, as the browser sees it. These mirror the
 * server's types (server/http/run-timeline.ts and friends);
 * test/unit/web-api-types.test.ts fails when the two drift apart.
 */

export type CohortOutcome = 'succeeded' | 'failed' | 'cancelled' | 'abandoned';
export type BarKind = 'built' | 'failed' | 'aborted' | 'lost' | 'running' | 'wait' | 'universe';

export interface TimelineBar {
  readonly kind: BarKind;
  readonly stepId: string | null;
  readonly startMs: number;
  readonly endMs: number;
  readonly open: boolean;
  readonly backup: boolean;
  readonly retried: boolean;
  readonly attempt: number | null;
  readonly critical: boolean;
  readonly inferred: boolean;
  readonly ok: boolean | null;
}

export interface TimelineLane {
  readonly peerId: string;
  readonly status: string;
  readonly pipelineName: string;
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
  readonly buildMs: number;
  readonly runnerMs: number;
  readonly wallMs: number;
  readonly savedBuildSec: number | null;
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
  readonly outcome: CohortOutcome | null;
  readonly startedAtMs: number;
  readonly endAtMs: number;
  readonly nowMs: number;
  readonly universe: string;
  readonly lanes: readonly TimelineLane[];
  readonly steps: readonly TimelineStep[];
  readonly criticalPath: readonly string[];
  readonly failures: readonly FailureCause[];
  readonly totals: RunTotals;
}

export interface TrendRow {
  readonly schemaId: string;
  readonly day: string;
  readonly runs: number;
  readonly stepsBuilt: number;
  readonly stepsReused: number;
  readonly savedBuildSec: number;
  readonly savedRunnerSec: number;
  readonly runnerSec: number;
  readonly failed: number;
  readonly abandoned: number;
}

/** An entry of GET /api/v1/cohorts. */
export interface CohortListEntry {
  readonly id: string;
  readonly schemaId: string;
  readonly repo: string;
  readonly baseRef: string;
  /** `--cohort-key` of its peers; null when they were matched by source state. */
  readonly cohortKey: string | null;
  readonly pipelineType: string;
  readonly pipelineNames: readonly string[];
  readonly patchsets: readonly string[];
  readonly status: string;
  readonly outcome: CohortOutcome | null;
  readonly createdAt: string;
  readonly resolvedAt: string | null;
  readonly secondsSaved: number | null;
  readonly steps: { total: number; pending: number; leased: number; succeeded: number; failed: number; fromMemo: number };
  readonly peers: number;
}

/** An entry of GET /api/v1/peers/live. */
export interface LivePeerEntry {
  readonly peerId: string;
  readonly cohortId: string;
  readonly status: string;
  readonly joinedAt: string;
  readonly repo: string;
  readonly baseRef: string;
  readonly changeRef: string | null;
  readonly pipelineName: string;
  /** Its labels (`gpu`, `arch:x64`, ...): it gets only steps whose `requires` these include. */
  readonly labels: readonly string[];
  readonly ciJobUrl: string | null;
  readonly doing: string;
  readonly stepId: string | null;
}

/** An entry of GET /api/v1/cohorts/:id/cache-evidence: what a peer's universe build took from the remote cache. */
export interface CacheEvidenceEntry {
  readonly peerId: string;
  readonly reportedAtMs: number;
  readonly tool: string;
  readonly hits: number;
  readonly misses: number;
  readonly missedSteps: readonly string[];
  /** `record`: per action or task; `output`: the tool's summary line only (which steps missed is unknown). */
  readonly source: 'record' | 'output';
}
