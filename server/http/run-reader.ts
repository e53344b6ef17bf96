import { describeStepFailure, leaseOutcomeOf, type CohortOutcome as StoredOutcome, type LeaseEnd, type StepFailCause } from '../core/causes.js';
import type { CohortDetailView, ReadModel } from '../core/read-model.js';

/**
 * What the dashboard, the trace export and `taskshard cohort` read about one
 * run: the cohort, its steps, every lease (each attempt and backup copy), its
 * peers and its event log, all with epoch-millisecond times. Served by the
 * store's typed read model (server/core/read-model.ts); nothing here holds a
 * database handle. Causes come from the typed columns (`fail_cause_json`,
 * `end_json`, `outcome_json`); the prose for people (`failReason`) is rendered
 * here from them, never read back from a text column.
 */
export interface RunReader {
  /** The run, or null when no such cohort is stored. */
  cohortRun(cohortId: string): Promise<CohortRun | null>;
  /** Ids of cohorts created at or after `sinceMs` (and before `beforeMs` when given), newest first (at most `limit`). */
  recentCohortIds(sinceMs: number, limit: number, beforeMs?: number): Promise<string[]>;
  /** How the cohort ended, as the core recorded it; null while open or when unknown. */
  storedOutcome(cohortId: string): Promise<StoredOutcome | null>;
  /** Peers with a live connection or in their grace period, newest first (at most `limit`). */
  livePeers(limit: number): Promise<LivePeer[]>;
}

export interface LivePeer {
  readonly peerId: string;
  readonly cohortId: string;
  readonly status: string;
  readonly joinedAtMs: number;
  readonly repo: string;
  readonly baseRef: string;
  readonly changeRef: string | null;
  readonly pipelineName: string;
  /** What kind of machine it is (`gpu`, `arch:x64`, ...), sorted; empty without labels. */
  readonly labels: readonly string[];
  readonly ciJobUrl: string | null;
}

export interface RunCohort {
  readonly cohortId: string;
  readonly schemaId: string;
  readonly repo: string;
  readonly baseRef: string;
  /** The key its peers named it by (`--cohort-key`); null when matched by source state. */
  readonly cohortKey: string | null;
  readonly pipelineType: string;
  readonly patchsets: readonly string[];
  readonly status: string;
  readonly createdAtMs: number;
  readonly resolvedAtMs: number | null;
  readonly secondsSaved: number | null;
  readonly universe: string;
  /** How it ended, as the core recorded it (`cohorts.outcome_json`); null while open. */
  readonly storedOutcome: StoredOutcome | null;
}

export interface RunStep {
  readonly stepId: string;
  readonly target: string;
  readonly needs: readonly string[];
  readonly estimateSec: number | null;
  /** null when the step row was never written (cannot happen for a stored cohort, kept honest). */
  readonly status: string | null;
  readonly attempts: number;
  readonly builtBy: string | null;
  readonly fromMemo: boolean;
  readonly durationMs: number | null;
  /** Why it failed for the cohort, as the core recorded it; null unless failed. */
  readonly failCause: StepFailCause | null;
  /** `failCause` rendered for people (describeStepFailure). */
  readonly failReason: string | null;
  readonly failPeerId: string | null;
  readonly failExitCode: number | null;
  readonly failLogTail: string | null;
  readonly resolvedAtMs: number | null;
}

export interface RunLease {
  readonly leaseId: string;
  readonly stepId: string;
  readonly peerId: string;
  readonly attempt: number;
  readonly backup: boolean;
  readonly startedAtMs: number;
  readonly endedAtMs: number | null;
  /** How it ended, as the core recorded it; null while the lease is live. */
  readonly end: LeaseEnd | null;
  /** The kind of `end` (`unrecorded` ends give their stored outcome); null while the lease is live. */
  readonly outcome: 'succeeded' | 'failed' | 'lost' | 'aborted' | null;
}

export interface RunPeer {
  readonly peerId: string;
  readonly status: string;
  readonly joinedAtMs: number;
  readonly pipelineName: string;
  readonly changeRef: string | null;
  /** The CI job's page the peer reported, or null. */
  readonly ciJobUrl: string | null;
}

export interface RunEvent {
  readonly atMs: number;
  readonly kind: string;
  readonly stepId: string | null;
  readonly peerId: string | null;
  readonly detail: string | null;
}

export interface CohortRun {
  readonly cohort: RunCohort;
  /** In schema order. */
  readonly steps: readonly RunStep[];
  /** In grant order. */
  readonly leases: readonly RunLease[];
  /** In join order. */
  readonly peers: readonly RunPeer[];
  /** In commit order. */
  readonly events: readonly RunEvent[];
}

/** A stored cohort's detail as a run. */
export function runOfDetail(detail: CohortDetailView): CohortRun {
  const c = detail.cohort;
  return {
    cohort: {
      cohortId: c.cohortId,
      schemaId: c.schemaId,
      repo: c.repo,
      baseRef: c.baseRef,
      cohortKey: c.cohortKey,
      pipelineType: c.pipelineType,
      patchsets: c.patchsets,
      status: c.status,
      createdAtMs: c.createdAtMs,
      resolvedAtMs: c.resolvedAtMs,
      secondsSaved: c.secondsSaved,
      universe: detail.universe,
      storedOutcome: c.outcome,
    },
    steps: detail.steps.map((s) => ({
      stepId: s.stepId,
      target: s.target,
      needs: s.needs,
      estimateSec: s.estimateSec,
      status: s.status,
      attempts: s.attempts,
      builtBy: s.builtBy,
      fromMemo: s.fromMemo,
      durationMs: s.durationMs,
      failCause: s.failCause,
      failReason: s.failCause === null ? null : describeStepFailure(s.failCause),
      failPeerId: s.failPeerId,
      failExitCode: s.failExitCode,
      failLogTail: s.failLogTail,
      resolvedAtMs: s.resolvedAtMs,
    })),
    leases: detail.leases.map((l) => ({
      leaseId: l.leaseId,
      stepId: l.stepId,
      peerId: l.peerId,
      attempt: l.attempt,
      backup: l.backup,
      startedAtMs: l.startedAtMs,
      endedAtMs: l.endedAtMs,
      end: l.end,
      outcome: l.end === null ? null : leaseOutcomeOf(l.end),
    })),
    peers: detail.peers.map((p) => ({ peerId: p.peerId, status: p.status, joinedAtMs: p.joinedAtMs, pipelineName: p.pipelineName, changeRef: p.changeRef, ciJobUrl: p.ciJobUrl })),
    events: detail.timeline.map((e) => ({ atMs: e.atMs, kind: e.kind, stepId: e.stepId, peerId: e.peerId, detail: e.detail })),
  };
}

/** Runs as the store's read model has them (committed state, history included). */
export class ReadModelRunReader implements RunReader {
  constructor(private readonly readModel: ReadModel) {}

  async recentCohortIds(sinceMs: number, limit: number, beforeMs?: number): Promise<string[]> {
    return (await this.readModel.listCohorts({ createdSinceMs: sinceMs, limit, ...(beforeMs === undefined ? {} : { createdBeforeMs: beforeMs }) })).map((c) => c.cohortId);
  }

  async storedOutcome(cohortId: string): Promise<StoredOutcome | null> {
    return (await this.readModel.cohortDetail(cohortId))?.cohort.outcome ?? null;
  }

  async livePeers(limit: number): Promise<LivePeer[]> {
    const peers = await this.readModel.listPeers({ statuses: ['connected', 'disconnected'], limit });
    return peers.map((p) => ({
      peerId: p.peerId,
      cohortId: p.cohortId,
      status: p.status,
      joinedAtMs: p.joinedAtMs,
      repo: p.repo,
      baseRef: p.baseRef,
      changeRef: p.changeRef,
      pipelineName: p.pipelineName,
      labels: p.labels ?? [],
      ciJobUrl: p.ciJobUrl,
    }));
  }

  async cohortRun(cohortId: string): Promise<CohortRun | null> {
    const detail = await this.readModel.cohortDetail(cohortId);
    return detail ? runOfDetail(detail) : null;
  }
}
