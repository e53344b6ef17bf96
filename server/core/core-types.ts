import type { ConnId, Effect } from './effects.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import type { Registration, Write } from './records.js';

/**
 * The core's inputs and outputs: `handle(input, nowMs) -> { writes, effects }`.
 * The transport turns frames into inputs and effects into frames; the store
 * commits `writes` before any effect is carried out.
 */

/** Tunables of the scheduler. All durations in milliseconds. */
export interface CoreConfig {
  /** How long a dropped peer keeps its lease. Default 60 s. */
  readonly leaseGraceMs: number;
  /** How long a success for an exact source state is reused. Default 24 h. */
  readonly memoTtlMs: number;
  /** Estimate for a step with no recorded duration and no `estimateSec`. Default 60 s. */
  readonly defaultEstimateMs: number;
  /** A backup copy may start once a step has run `stragglerFactor` × its estimate (default 2; 0 disables backups)... */
  readonly stragglerFactor: number;
  /** ...and at least this long. Default 30 s. */
  readonly stragglerMinMs: number;
  /** Reported failures after which a step is failed for the cohort (first run + one retry). Default 2. */
  readonly maxFailures: number;
  /** Leases whose holder died while running the step after which it is failed (a step that kills its peer). Default 3. */
  readonly maxLostLeases: number;
  /**
   * A lease older than this is ended (`aborted`, why `max-age`) and the step leased again; null: the
   * default rule, `leaseAgeFactor` × the step's estimate (at least `minLeaseAgeMs`), or
   * `unknownLeaseAgeMs` when the step has no real estimate. Default null.
   */
  readonly maxLeaseAgeMs: number | null;
  /** Default 4. */
  readonly leaseAgeFactor: number;
  /** Floor of the estimate-based max age (a 50 ms step recorded once must not get a 200 ms limit). Default 10 min. */
  readonly minLeaseAgeMs: number;
  /** Max age of a lease of a step with no recorded duration and no `estimateSec`. Default 2 h. */
  readonly unknownLeaseAgeMs: number;
  /**
   * How much shorter than the authority's own measure (lease start to completion) a peer's reported
   * duration may be and still be recorded (at most half the measure). Default 5 s.
   */
  readonly peerDurationSlackMs: number;
  /** Weight of the newest sample in the duration moving average. Default 0.3. */
  readonly durationAlpha: number;
  /** How long resolved cohorts stay joinable and in memory. Default 24 h. */
  readonly cohortRetentionMs: number;
  /** An open cohort with no active member (nobody joined, or everyone left) is abandoned after this (or the retention, if shorter). Default 1 h. */
  readonly idleCohortTtlMs: number;
  /** Open cohorts one source (repo + cache id) may have; a hello that would create another gets `QUOTA_EXCEEDED`. Default 256. */
  readonly maxOpenCohortsPerSource: number;
  /** Steps in the open cohorts of one source, likewise. Default 100,000. */
  readonly maxStepsPerSource: number;
  /** How often retention and memo expiry are swept. Default 60 s. */
  readonly sweepIntervalMs: number;
  /** Sweep entries (a memo, a cohort) one tick handles at most; a backlog continues on the next tick. Default 200. */
  readonly sweepBatch: number;
  /** The transport's ping interval, announced to peers in `welcome`. Default 15 s. */
  readonly pingIntervalMs: number;
}

export const defaultCoreConfig: CoreConfig = Object.freeze({
  leaseGraceMs: 60_000,
  memoTtlMs: 24 * 3600_000,
  defaultEstimateMs: 60_000,
  stragglerFactor: 2,
  stragglerMinMs: 30_000,
  maxFailures: 2,
  maxLostLeases: 3,
  maxLeaseAgeMs: null,
  leaseAgeFactor: 4,
  minLeaseAgeMs: 10 * 60_000,
  unknownLeaseAgeMs: 2 * 3600_000,
  peerDurationSlackMs: 5_000,
  durationAlpha: 0.3,
  cohortRetentionMs: 24 * 3600_000,
  idleCohortTtlMs: 3600_000,
  maxOpenCohortsPerSource: 256,
  maxStepsPerSource: 100_000,
  sweepIntervalMs: 60_000,
  sweepBatch: 200,
  pingIntervalMs: 15_000,
});

/** Ids the core needs but must not invent itself (no randomness in the core). */
export interface IdSource {
  cohortId(): string;
  leaseId(): string;
}

/** A resume token and its hash; the core keeps only hashes. */
export interface TokenPair {
  readonly token: string;
  readonly hash: string;
}


export type CoreInput =
  | {
      readonly kind: 'hello';
      readonly connId: ConnId;
      readonly peerId: string;
      readonly registration: Registration;
      readonly schema: SchemaDef;
      readonly digest: string;
      /** The token the peer presented to resume, if any. */
      readonly presentedToken: TokenPair | null;
      /** A fresh token, used when this hello starts a new registration (the peer's registration token when it sent one). */
      readonly freshToken: TokenPair;
      /**
       * The peer's own registration token (hello `registrationToken`), when it sent one: a hello presenting
       * the token of an active registration resumes it (its join was committed, its welcome never arrived).
       * Absent for clients that cannot send one (Task Director, the simulator).
       */
      readonly registrationToken?: TokenPair | null;
      readonly currentStep: { readonly stepId: string; readonly leaseId: string } | null;
      /** Task Director clients cannot resume: no grace period for them. */
      readonly resumable: boolean;
      /**
       * The hello's `targetedUpdates`: this connection hears another step's success only while it
       * waits (and of the step it built); failures and reopened steps as before. Absent: every success.
       */
      readonly targetedUpdates?: boolean;
    }
  | {
      readonly kind: 'finished';
      /** The connection it came on; the core knows which peer (if any) joined on it. */
      readonly connId: ConnId;
      /** The lease reported; null: the one this peer holds (Task Director frames name no lease). */
      readonly leaseId: string | null;
      readonly stepId: string;
      readonly ok: boolean;
      readonly exitCode: number | null;
      /** As the peer measured it (recorded only within the authority's own measure, see `peerDurationSlackMs`); null: the authority's measure. */
      readonly durationMs: number | null;
      readonly logTail: string | null;
      /** With `ok: false`: built, but `--verify` found the result missing from the remote cache (not a build failure). */
      readonly unpublished?: boolean;
    }
  | { readonly kind: 'disconnected'; readonly connId: ConnId }
  | { readonly kind: 'bye'; readonly connId: ConnId }
  | { readonly kind: 'tick' }
  | { readonly kind: 'drain' }
  | { readonly kind: 'cancel'; readonly cohortId: string }
  | { readonly kind: 'retry'; readonly cohortId: string; readonly stepId: string };

export type { ConnId, CoreStat, Effect } from './effects.js';

/** The answer to an admin input. */
export type AdminResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: 404 | 409 | 500; readonly code: string; readonly message: string };

export interface CoreOutput {
  readonly writes: readonly Write[];
  readonly effects: readonly Effect[];
  readonly admin: AdminResult | null;
  /**
   * The error that aborted the input (a bug: an illegal transition, a broken
   * invariant, an exception), or null. When set, state is exactly as before
   * the input, `writes` is empty and `effects` only tells the sender INTERNAL;
   * the caller logs the error whole.
   */
  readonly fault: unknown;
}
