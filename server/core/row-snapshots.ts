import type { CohortRecord, LeaseRecord, PeerRecord, StepRecord } from './records.js';

/**
 * Frozen copies of live records, the rows an input hands to the store (core-tx.ts `output`). Each
 * copy names every field in one object literal: about four times cheaper than
 * `Object.freeze(Object.assign({}, row))` (one allocation of a fixed shape, no property-by-property
 * copy; issue 17). Records change by replacing fields, never nested values in place, so a shallow
 * copy is a snapshot. Each literal is typed with every field of its record required
 * ({@link AllFields}), so a field added to a record and not here fails to compile; an optional
 * field is copied only when the live record has it (as `Object.assign` did).
 */

/** Every field of `T`, optional ones included, as required keys. */
type AllFields<T> = { [K in keyof Required<T>]: T[K] };

export function leaseSnapshot(r: LeaseRecord): LeaseRecord {
  const copy: AllFields<LeaseRecord> = {
    leaseId: r.leaseId,
    cohortId: r.cohortId,
    stepId: r.stepId,
    peerId: r.peerId,
    attempt: r.attempt,
    backup: r.backup,
    startedAtMs: r.startedAtMs,
    endedAtMs: r.endedAtMs,
    end: r.end,
  };
  return Object.freeze(copy);
}

export function stepSnapshot(r: StepRecord): StepRecord {
  if (!('unsharedCause' in r)) {
    const copy: Omit<AllFields<StepRecord>, 'unsharedCause'> = {
      cohortId: r.cohortId,
      stepId: r.stepId,
      status: r.status,
      attempts: r.attempts,
      failures: r.failures,
      lostLeases: r.lostLeases,
      failedOn: r.failedOn,
      builtBy: r.builtBy,
      fromMemo: r.fromMemo,
      durationMs: r.durationMs,
      failCause: r.failCause,
      failPeerId: r.failPeerId,
      failExitCode: r.failExitCode,
      failLogTail: r.failLogTail,
      resolvedAtMs: r.resolvedAtMs,
    };
    return Object.freeze(copy);
  }
  const copy: AllFields<StepRecord> = {
    cohortId: r.cohortId,
    stepId: r.stepId,
    status: r.status,
    attempts: r.attempts,
    failures: r.failures,
    lostLeases: r.lostLeases,
    failedOn: r.failedOn,
    builtBy: r.builtBy,
    fromMemo: r.fromMemo,
    durationMs: r.durationMs,
    failCause: r.failCause,
    failPeerId: r.failPeerId,
    failExitCode: r.failExitCode,
    failLogTail: r.failLogTail,
    resolvedAtMs: r.resolvedAtMs,
    unsharedCause: r.unsharedCause,
  };
  return Object.freeze(copy);
}

export function peerSnapshot(r: PeerRecord): PeerRecord {
  const copy: AllFields<PeerRecord> = {
    peerId: r.peerId,
    cohortId: r.cohortId,
    tokenHash: r.tokenHash,
    registration: r.registration,
    resumable: r.resumable,
    status: r.status,
    joinedAtMs: r.joinedAtMs,
    graceEndsAtMs: r.graceEndsAtMs,
  };
  return Object.freeze(copy);
}

export function cohortSnapshot(r: CohortRecord): CohortRecord {
  const copy: AllFields<CohortRecord> = {
    cohortId: r.cohortId,
    repo: r.repo,
    baseRef: r.baseRef,
    cacheId: r.cacheId,
    pipelineType: r.pipelineType,
    isolated: r.isolated,
    schema: r.schema,
    digest: r.digest,
    baseSha: r.baseSha,
    cohortKey: r.cohortKey,
    patchsets: r.patchsets,
    status: r.status,
    createdAtMs: r.createdAtMs,
    resolvedAtMs: r.resolvedAtMs,
    lastActivityMs: r.lastActivityMs,
    secondsSaved: r.secondsSaved,
    outcome: r.outcome,
  };
  return Object.freeze(copy);
}
