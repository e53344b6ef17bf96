import type { SchemaDef } from '../../shared/schema-file.js';
import type { CohortOutcome, LeaseEnd, StepFailCause, UnsharedCause } from './causes.js';
import type { StepStatus } from './step-status.js';

/**
 * The persisted shape of the scheduler's state. The core keeps these objects
 * as its state and changes them only through its journal (every field is
 * read-only here); it hands frozen copies of changed ones to the store as
 * writes; on start the store hands them back as a {@link Snapshot}.
 */

export type PipelineType = 'independent' | 'dependent';

/** What a peer registered: its source state and how it wants to share. */
export interface Registration {
  readonly repo: string;
  readonly baseRef: string;
  readonly baseSha: string | null;
  /** Patchsets (change refs) applied on the base, in the peer's order. */
  readonly patchsets: readonly string[];
  readonly changeRef: string | null;
  readonly pipelineName: string;
  readonly pipelineType: PipelineType;
  readonly isolated: boolean;
  readonly cacheId: string;
  /**
   * `--cohort-key`: names the group explicitly. Peers with the same key (and
   * repo, cache id, schema digest) share a cohort whatever their refs, sha and
   * patchsets; those stay the peer's real ones (shown, and used for the memo).
   * Absent (old rows) or null: matched by source state.
   */
  readonly cohortKey?: string | null;
  /**
   * Multi-repo source states (Task Director clients): every repo with its base
   * ref. When present, matching needs each of these in the cohort with the same
   * base ref (a subset), instead of `repo` and `baseRef` being equal.
   */
  readonly repos?: readonly RepoRef[];
  /**
   * What kind of machine the peer is (`gpu`, `arch:x64`, ...; sorted, distinct): it is granted
   * only steps whose `requires` these include. Absent: no labels (Task Director clients, old peers).
   */
  readonly labels?: readonly string[];
  /** The CI job's page, when the peer reported one (`hello.ciJobUrl`); shown by the dashboard only. */
  readonly ciJobUrl?: string;
}

export interface RepoRef {
  readonly repo: string;
  readonly baseRef: string;
}

export const cohortStatus = Object.freeze({ open: 'open', complete: 'complete', cancelled: 'cancelled' });
export type CohortStatus = (typeof cohortStatus)[keyof typeof cohortStatus];

export interface CohortRecord {
  readonly cohortId: string;
  readonly repo: string;
  readonly baseRef: string;
  readonly cacheId: string;
  readonly pipelineType: PipelineType;
  readonly isolated: boolean;
  readonly schema: SchemaDef;
  readonly digest: string;
  /** Base sha of the first peer; for independent cohorts without a cohort key every member's. */
  readonly baseSha: string | null;
  /** The cohort key its peers named (`--cohort-key`), or null when matched by source state. */
  readonly cohortKey: string | null;
  /** Independent: the exact patchset set; dependent: the union of members' patchsets. */
  readonly patchsets: readonly string[];
  readonly status: CohortStatus;
  readonly createdAtMs: number;
  readonly resolvedAtMs: number | null;
  readonly lastActivityMs: number;
  /** Machine seconds saved, set when the cohort completes. */
  readonly secondsSaved: number | null;
  /** How it ended; null while open. */
  readonly outcome: CohortOutcome | null;
}

export interface StepRecord {
  readonly cohortId: string;
  readonly stepId: string;
  readonly status: StepStatus;
  /** Leases granted so far (backups included); the next lease's attempt is this + 1. */
  readonly attempts: number;
  /** Reported failures (non-zero exit) of live leases. */
  readonly failures: number;
  /** Leases whose holder died while running it (grace expired, or gone after a restart; causes.ts `isDeath`). */
  readonly lostLeases: number;
  /** Peers that failed this step, so a retry goes elsewhere when it can. */
  readonly failedOn: readonly string[];
  readonly builtBy: string | null;
  readonly fromMemo: boolean;
  readonly durationMs: number | null;
  /** Why it failed for the cohort; null unless `failed`. */
  readonly failCause: StepFailCause | null;
  readonly failPeerId: string | null;
  readonly failExitCode: number | null;
  readonly failLogTail: string | null;
  /** Why no member built it; set iff `unshared`. Absent in rows from before labels (read as null). */
  readonly unsharedCause?: UnsharedCause | null;
  readonly resolvedAtMs: number | null;
}

/** A step row as a new cohort starts it: pending, never leased. */
export function pendingStepRecord(cohortId: string, stepId: string): StepRecord {
  return {
    cohortId,
    stepId,
    status: 'pending',
    attempts: 0,
    failures: 0,
    lostLeases: 0,
    failedOn: [],
    builtBy: null,
    fromMemo: false,
    durationMs: null,
    failCause: null,
    failPeerId: null,
    failExitCode: null,
    failLogTail: null,
    resolvedAtMs: null,
  };
}

export interface LeaseRecord {
  readonly leaseId: string;
  readonly cohortId: string;
  readonly stepId: string;
  readonly peerId: string;
  readonly attempt: number;
  readonly backup: boolean;
  readonly startedAtMs: number;
  readonly endedAtMs: number | null;
  /** How it ended; null while live. */
  readonly end: LeaseEnd | null;
}

export const peerStatus = Object.freeze({
  connected: 'connected',
  disconnected: 'disconnected',
  gone: 'gone',
  left: 'left',
});
export type PeerStatus = (typeof peerStatus)[keyof typeof peerStatus];

export interface PeerRecord {
  readonly peerId: string;
  readonly cohortId: string;
  readonly tokenHash: string;
  readonly registration: Registration;
  /** Whether the peer can resume (protocol v1) or not (Task Director clients). */
  readonly resumable: boolean;
  readonly status: PeerStatus;
  readonly joinedAtMs: number;
  /** While disconnected: the lease is lost iff `now >= graceEndsAtMs`. */
  readonly graceEndsAtMs: number | null;
}

export interface MemoRecord {
  readonly memoKey: string;
  readonly stepId: string;
  readonly cohortId: string;
  readonly peerId: string | null;
  readonly durationMs: number | null;
  readonly createdAtMs: number;
  /** The memo is used iff `now < expiresAtMs`. */
  readonly expiresAtMs: number;
}

export interface DurationRecord {
  readonly durationKey: string;
  readonly avgMs: number;
  readonly samples: number;
}

export interface EventRecord {
  readonly cohortId: string;
  readonly atMs: number;
  readonly kind: string;
  readonly stepId: string | null;
  readonly peerId: string | null;
  readonly detail: string | null;
  /**
   * Set when the event only restates a change of this lease written by the same input (its grant:
   * `step.leased`; its end: `step.succeeded`, `step.attempt-failed`, `lease.lost`, `lease.aborted`).
   * The store then writes no event row: it records the event's place in the timeline on the lease
   * row and the read model derives the event from it (server/store/lease-events.ts).
   */
  readonly leaseId?: string;
}

/** One row-level change for the store; a batch of them commits in one transaction. */
export type Write =
  /**
   * `created`: this input created the cohort, so the store inserts the whole row. Absent: an earlier
   * write created it, and only what changes after creation (status, patchsets, times, outcome) is
   * written; the schema and the other columns set at creation are not sent again (the schema of a
   * 1,000-step cohort is 53 KB of JSON, and the row is written after most inputs).
   */
  | { readonly table: 'cohort'; readonly row: CohortRecord; readonly created?: true }
  | { readonly table: 'step'; readonly row: StepRecord }
  | { readonly table: 'lease'; readonly row: LeaseRecord }
  | { readonly table: 'peer'; readonly row: PeerRecord }
  | { readonly table: 'memo'; readonly row: MemoRecord }
  | { readonly table: 'memo.delete'; readonly memoKey: string }
  | { readonly table: 'duration'; readonly row: DurationRecord }
  | { readonly table: 'event'; readonly row: EventRecord };

/** Whether the store keeps a write as a row of its own (an event with a `leaseId` goes on its lease's row). */
export function isRowWrite(w: Write): boolean {
  return w.table !== 'event' || w.row.leaseId === undefined;
}

/** What the store hands back on start: everything the core needs to continue. */
export interface Snapshot {
  readonly cohorts: readonly CohortRecord[];
  readonly steps: readonly StepRecord[];
  readonly leases: readonly LeaseRecord[];
  readonly peers: readonly PeerRecord[];
  readonly memos: readonly MemoRecord[];
  readonly durations: readonly DurationRecord[];
}
