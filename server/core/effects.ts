import type { ErrorCode } from '../../shared/error-codes.js';
import type { CompleteSummary } from '../../shared/protocol.js';
import type { AbortWhy, CohortOutcome, LeaseEnd, StepFailCause } from './causes.js';
import type { AloneReason } from './cohort-matcher.js';
import type { StepStatus } from './step-status.js';

/**
 * What the core tells the world, protocol-neutral. The v1 socket
 * (server/http/v1-frames.ts) and the Task Director adapter each render these
 * to their own frames; prose is rendered there too (causes.ts,
 * server/http/refusal-text.ts), never here.
 */

/** A connection, as the transport numbers them. */
export type ConnId = number;

/** The cohort as a joining or resuming peer is told about it. */
export interface CohortView {
  readonly id: string;
  /** Members connected or in grace. */
  readonly peers: number;
  readonly steps: number;
  readonly resolved: number;
  readonly succeeded: readonly { readonly stepId: string; readonly peerId: string | null; readonly fromMemo: boolean }[];
}

/** Why a step changed state, when it matters to the peers told. */
export type StepChangeCause =
  /** A failed attempt with a retry left: back to pending. */
  | { readonly kind: 'retrying'; readonly attempt: number; readonly peerId: string; readonly exitCode: number | null }
  | { readonly kind: 'admin-retry' }
  /** Built, but its result is not in the remote cache (`--verify` failed): leased again. */
  | { readonly kind: 'unpublished'; readonly peerId: string; readonly exitCode: number | null }
  | { readonly kind: 'failed'; readonly cause: StepFailCause };

export interface StepChange {
  readonly cohortId: string;
  readonly stepId: string;
  /** Never `unshared`: that is told in `complete` (old peers know only these four states). */
  readonly state: Exclude<StepStatus, 'leased' | 'unshared'>;
  /** Who built it (succeeded), who failed it (failed, pending after a failure); null otherwise. */
  readonly peerId: string | null;
  readonly fromMemo: boolean;
  readonly durationMs?: number;
  readonly exitCode?: number | null;
  readonly logTail?: string;
  readonly cause?: StepChangeCause;
}

/** Why the core did not act on an input from a connection; each maps to one error code. */
export type Refusal =
  | { readonly kind: 'duplicate-peer'; readonly peerId: string; readonly heldBy: 'connection' | 'grace' }
  | { readonly kind: 'schema-mismatch'; readonly cohortId: string; readonly schemaId: string; readonly digest: string; readonly presented: string }
  /** A completion for a lease the authority does not know, whose cohort is gone, or that already ended. */
  | {
      readonly kind: 'stale-lease';
      readonly leaseId: string;
      readonly stepId: string;
      readonly why: 'unknown' | 'cohort-closed' | 'ended';
      readonly ok: boolean;
      readonly end?: LeaseEnd;
      readonly stepStatus?: StepStatus;
    }
  /** A completion naming no lease, from a connection that holds none (Task Director clients). */
  | { readonly kind: 'no-lease-held'; readonly stepId: string }
  | { readonly kind: 'lease-not-held'; readonly leaseId: string; readonly stepId: string }
  | { readonly kind: 'wrong-step'; readonly leaseId: string | null; readonly leaseStepId: string; readonly stepId: string }
  | { readonly kind: 'shutting-down' }
  /** A new cohort would pass its source's quota (source-quota.ts): open cohorts, or steps in them. */
  | { readonly kind: 'quota-exceeded'; readonly repo: string; readonly cacheId: string; readonly quota: 'cohorts' | 'steps'; readonly held: number; readonly requested: number; readonly limit: number }
  /** A report or bye on a connection no hello was accepted on. */
  | { readonly kind: 'not-joined' }
  /** A second hello on a connection a peer already joined on. */
  | { readonly kind: 'already-joined'; readonly peerId: string }
  | { readonly kind: 'internal' }
  /** A frame the transport refused before it reached the core, with the adapter's own message. */
  | { readonly kind: 'frame'; readonly code: ErrorCode; readonly message: string };

/** The error code a refusal is sent with. */
export function refusalCode(r: Refusal): ErrorCode {
  switch (r.kind) {
    case 'duplicate-peer':
      return 'DUPLICATE_PEER';
    case 'schema-mismatch':
      return 'SCHEMA_MISMATCH';
    case 'stale-lease':
    case 'no-lease-held':
      return 'STALE_LEASE';
    case 'lease-not-held':
      return 'LEASE_NOT_HELD';
    case 'wrong-step':
      return 'UNKNOWN_STEP';
    case 'shutting-down':
      return 'SHUTTING_DOWN';
    case 'quota-exceeded':
      return 'QUOTA_EXCEEDED';
    case 'not-joined':
      return 'NOT_JOINED';
    case 'already-joined':
      return 'ALREADY_JOINED';
    case 'internal':
      return 'INTERNAL';
    case 'frame':
      return r.code;
  }
}

/** A counter the transport exports as a metric. */
export type CoreStat =
  | 'step.assigned'
  | 'step.succeeded'
  | 'step.failed'
  | 'step.reused'
  /** A lease whose holder died while running it (grace expired, gone after a restart): counts toward poison. */
  | 'lease.expired'
  /** A lease given back by a holder that is alive (bye, resumed without it, a Task Director client's drop): never poison. */
  | 'lease.released'
  /** A lease ended because it passed its max age (`--max-lease-age`); the step is leased again. */
  | 'lease.timed-out'
  /** Build time saved by a completed cohort (s): every member building every step, minus each step built once. */
  | 'seconds.saved'
  /** Runner time of a peer told `complete` (s): join to complete, building and waiting. */
  | 'runner.spent'
  /** What that peer would have spent building every step alone (s). */
  | 'runner.alone';

export type Effect =
  /** A hello was accepted: the peer joined a cohort or resumed its registration. */
  | {
      readonly kind: 'joined';
      readonly connId: ConnId;
      readonly peerId: string;
      readonly resumeToken: string;
      readonly resumed: boolean;
      readonly cohort: CohortView;
      readonly pingIntervalMs: number;
      /** Alone in a new cohort: why it could have had company (cohort-matcher.ts). */
      readonly alone?: readonly AloneReason[];
    }
  /** A lease for the connection's peer. */
  | { readonly kind: 'granted'; readonly connId: ConnId; readonly cohortId: string; readonly stepId: string; readonly leaseId: string; readonly attempt: number; readonly backup: boolean }
  /** Nothing to run yet. */
  /** `heldMs`: the lease's age at `now` (lease start to now, on the authority's clock). */
  | { readonly kind: 'wait'; readonly connId: ConnId; readonly cohortId: string; readonly running: readonly { readonly stepId: string; readonly peerId: string; readonly heldMs: number }[]; readonly unresolved: number }
  /** A step of the cohort changed state; one effect for every member connection told. */
  | { readonly kind: 'step-changed'; readonly connIds: readonly ConnId[]; readonly change: StepChange }
  /** The cohort is resolved (or was already when the peer joined or resumed). */
  | { readonly kind: 'complete'; readonly connId: ConnId; readonly cohortId: string; readonly outcome: CohortOutcome; readonly summary: CompleteSummary }
  /** Stop running a step: another copy won, the cohort was cancelled, or the lease is no longer the peer's. */
  | { readonly kind: 'abort'; readonly connId: ConnId; readonly stepId: string; readonly leaseId: string; readonly why: AbortWhy | 'lease-lost' }
  | { readonly kind: 'refuse'; readonly connId: ConnId; readonly refusal: Refusal }
  /** The connection was replaced by a resumed one for the same peer. */
  | { readonly kind: 'superseded'; readonly connId: ConnId }
  /** Close a connection (the transport's own decision, queued behind what is already due). */
  | { readonly kind: 'close'; readonly connId: ConnId; readonly code: number; readonly reason: string }
  | { readonly kind: 'stat'; readonly stat: CoreStat; readonly value: number }
  /** Something the operator should see in the server log. */
  | { readonly kind: 'notice'; readonly message: string; readonly fields: Readonly<Record<string, string | number | boolean | null>> };

/** The effects about one connection (a step change counts for each connection it names). */
export function effectsFor(effects: readonly Effect[], connId: ConnId): Effect[] {
  return effects.filter((e) => (e.kind === 'step-changed' ? e.connIds.includes(connId) : 'connId' in e && e.connId === connId));
}
