import { z } from 'zod';

/**
 * What the read model hands out: typed views of committed state, for the HTTP
 * API, the dashboard and the CLI. Times are epoch milliseconds (the HTTP edge
 * renders them as ISO strings). Every implementation validates the rows it
 * reads back against these schemas, so a corrupt database fails loudly,
 * naming table, key and field, instead of leaking odd values to a client.
 */

const count = z.number().int().min(0);
const ms = z.number().int();

export const cohortStatusView = z.enum(['open', 'complete', 'cancelled']);
export const stepStatusView = z.enum(['pending', 'leased', 'succeeded', 'failed', 'unshared']);
export const peerStatusView = z.enum(['connected', 'disconnected', 'gone', 'left']);
export const leaseOutcomeView = z.enum(['succeeded', 'failed', 'lost', 'aborted']);
export const pipelineTypeView = z.enum(['independent', 'dependent']);

const cancelledBy = z.enum(['admin', 'abandoned']);
const lossWhy = z.enum(['grace-expired', 'bye', 'not-resumed', 'restart', 'client-dropped']);

/** Why a step failed for its cohort: a StepFailCause (causes.ts). */
export const stepFailCauseView = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('attempts-exhausted'), failures: z.number().int(), peerId: z.string(), exitCode: z.number().int().nullable() }),
  z.strictObject({ kind: z.literal('lost-too-often'), lostLeases: z.number().int(), last: lossWhy }),
  z.strictObject({ kind: z.literal('need-failed'), need: z.string() }),
  z.strictObject({ kind: z.literal('cohort-cancelled'), by: cancelledBy }),
  z.strictObject({ kind: z.literal('legacy'), reason: z.string() }),
]);

/** Why a step was resolved without being built: an UnsharedCause (causes.ts). */
export const unsharedCauseView = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('no-capable-member'), requires: z.array(z.string()), missing: z.array(z.string()) }),
  z.strictObject({ kind: z.literal('need-unshared'), need: z.string() }),
]);

/** How a lease ended: a LeaseEnd (causes.ts). */
export const leaseEndView = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('succeeded') }),
  z.strictObject({ kind: z.literal('failed'), exitCode: z.number().int().nullable() }),
  z.strictObject({ kind: z.literal('lost'), why: lossWhy }),
  z.strictObject({ kind: z.literal('aborted'), why: z.enum(['superseded', 'cancelled', 'max-age']) }),
  z.strictObject({ kind: z.literal('unrecorded'), outcome: leaseOutcomeView }),
]);

/** How a cohort ended: a CohortOutcome (causes.ts). */
export const cohortOutcomeView = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('succeeded') }),
  z.strictObject({ kind: z.literal('failed'), failedSteps: z.number().int() }),
  z.strictObject({ kind: z.literal('cancelled'), by: cancelledBy }),
]);

/** A cohort with its step and peer counts (a row of the cohort list). */
export const cohortView = z.strictObject({
  cohortId: z.string(),
  schemaId: z.string(),
  digest: z.string(),
  repo: z.string(),
  baseRef: z.string(),
  baseSha: z.string().nullable(),
  /** The key its peers named it by (`--cohort-key`); null when matched by source state. */
  cohortKey: z.string().nullable(),
  cacheId: z.string(),
  pipelineType: pipelineTypeView,
  /** Distinct pipeline names of the cohort's peers, sorted. */
  pipelineNames: z.array(z.string()),
  isolated: z.boolean(),
  patchsets: z.array(z.string()),
  status: cohortStatusView,
  createdAtMs: ms,
  resolvedAtMs: ms.nullable(),
  lastActivityMs: ms,
  secondsSaved: z.number().nullable(),
  /** How it ended; null while open. */
  outcome: cohortOutcomeView.nullable(),
  steps: z.strictObject({ total: count, pending: count, leased: count, succeeded: count, failed: count, fromMemo: count }),
  peers: count,
});

/** A step of a cohort: its definition from the schema and its state. */
export const stepView = z.strictObject({
  stepId: z.string(),
  target: z.string(),
  needs: z.array(z.string()),
  estimateSec: z.number().nullable(),
  /** Labels a peer needs to build it (empty or absent: any peer). */
  requires: z.array(z.string()).optional(),
  status: stepStatusView,
  attempts: count,
  failures: count,
  lostLeases: count,
  failedOn: z.array(z.string()),
  builtBy: z.string().nullable(),
  fromMemo: z.boolean(),
  durationMs: z.number().int().nullable(),
  /** `failCause` rendered for people. */
  failReason: z.string().nullable(),
  failCause: stepFailCauseView.nullable(),
  failPeerId: z.string().nullable(),
  failExitCode: z.number().int().nullable(),
  failLogTail: z.string().nullable(),
  /** Why nobody built it (set iff `unshared`), and that rendered for people; the read models always fill both. */
  unsharedCause: unsharedCauseView.nullable().optional(),
  unsharedReason: z.string().nullable().optional(),
  resolvedAtMs: ms.nullable(),
});

export const leaseView = z.strictObject({
  leaseId: z.string(),
  stepId: z.string(),
  peerId: z.string(),
  attempt: z.number().int().min(1),
  backup: z.boolean(),
  startedAtMs: ms,
  endedAtMs: ms.nullable(),
  /** null while the lease is live. */
  outcome: leaseOutcomeView.nullable(),
  end: leaseEndView.nullable(),
});

export const peerView = z.strictObject({
  peerId: z.string(),
  cohortId: z.string(),
  status: peerStatusView,
  resumable: z.boolean(),
  joinedAtMs: ms,
  graceEndsAtMs: ms.nullable(),
  repo: z.string(),
  baseRef: z.string(),
  baseSha: z.string().nullable(),
  patchsets: z.array(z.string()),
  changeRef: z.string().nullable(),
  pipelineName: z.string(),
  pipelineType: pipelineTypeView,
  isolated: z.boolean(),
  cacheId: z.string(),
  /** What kind of machine it is (sorted); empty (the read models) or absent for peers without labels. */
  labels: z.array(z.string()).optional(),
  /** `--cohort-key`, or null. */
  cohortKey: z.string().nullable(),
  /** The CI job's page the peer reported; null when it sent none. */
  ciJobUrl: z.string().nullable(),
});

/** One line of a cohort's timeline; `seq` orders events and only grows. */
export const eventView = z.strictObject({
  seq: z.number().int().min(1),
  atMs: ms,
  kind: z.string(),
  stepId: z.string().nullable(),
  peerId: z.string().nullable(),
  detail: z.string().nullable(),
});

export const cohortDetailView = z.strictObject({
  cohort: cohortView,
  /** The schema's universe target (what every peer builds itself at the end). */
  universe: z.string(),
  /** In schema order. */
  steps: z.array(stepView),
  /** In grant order. */
  leases: z.array(leaseView),
  /** In join order. */
  peers: z.array(peerView),
  timeline: z.array(eventView),
});

export const statsView = z.strictObject({
  cohorts: z.strictObject({ open: count, complete: count, cancelled: count }),
  steps: z.strictObject({ succeeded: count, reusedFromMemo: count, failed: count, pending: count }),
  leases: z.strictObject({ granted: count, lost: count, backups: count }),
  peers: z.strictObject({ connected: count, inGrace: count }),
  secondsSaved: z.number().min(0),
});

/**
 * What one peer's universe build took from the remote cache, as its build tool reported it
 * (`--build-tool`, POST /api/v1/cohorts/:id/cache-evidence). One per peer and cohort: a later
 * report of the same peer replaces the earlier one. Stored with the cohort and pruned with it.
 */
export const cacheEvidenceView = z.strictObject({
  peerId: z.string().min(1),
  reportedAtMs: ms,
  tool: z.enum(['bazel', 'turbo']),
  hits: count,
  misses: count,
  missedSteps: z.array(z.string()),
  /** `record`: read from the tool's per-action record; `output`: from its summary line (totals only). */
  source: z.enum(['record', 'output']),
});

export type CohortView = z.infer<typeof cohortView>;
export type CacheEvidenceView = z.infer<typeof cacheEvidenceView>;
export type StepView = z.infer<typeof stepView>;
export type LeaseView = z.infer<typeof leaseView>;
export type PeerView = z.infer<typeof peerView>;
export type EventView = z.infer<typeof eventView>;
export type CohortDetailView = z.infer<typeof cohortDetailView>;
export type StatsView = z.infer<typeof statsView>;

/** Newest first (created time, then id); every field narrows the list. */
export interface CohortFilter {
  readonly status?: z.infer<typeof cohortStatusView>;
  readonly repo?: string;
  readonly pipelineType?: z.infer<typeof pipelineTypeView>;
  /** Cohorts with at least one peer registered under this pipeline name. */
  readonly pipelineName?: string;
  /** Only cohorts created strictly before this time (paging back through history). */
  readonly createdBeforeMs?: number;
  /**
   * With `createdBeforeMs`: also the cohorts created at exactly that time whose id sorts before
   * this one (list order is created time, then id), so a page cursor never skips a tie.
   */
  readonly beforeCohortId?: string;
  /** How it ended (`cancelled` is by an admin; `abandoned` by the authority when every peer left). */
  readonly outcome?: 'succeeded' | 'failed' | 'cancelled' | 'abandoned';
  /** Only cohorts created at or after this time. */
  readonly createdSinceMs?: number;
  /** 1..1000. */
  readonly limit: number;
}

/** Newest first (join time, then id). */
export interface PeerFilter {
  /** Any of these statuses. */
  readonly statuses?: readonly z.infer<typeof peerStatusView>[];
  readonly cohortId?: string;
  /** 1..1000. */
  readonly limit: number;
}

/**
 * Read side of the store: committed state, history included. Asynchronous so a
 * networked database fits the same contract; it never changes state.
 */
export interface ReadModel {
  listCohorts(filter: CohortFilter): Promise<CohortView[]>;
  /** null when no such cohort is stored (never was, or pruned). */
  cohortDetail(cohortId: string): Promise<CohortDetailView | null>;
  listPeers(filter: PeerFilter): Promise<PeerView[]>;
  stats(): Promise<StatsView>;
  /** The cache evidence peers reported for a cohort, oldest report first (then peer id); empty when none (or no such cohort). */
  cacheEvidence(cohortId: string): Promise<CacheEvidenceView[]>;
}
