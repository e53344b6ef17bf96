/**
 * Why things ended, as typed values: code branches on these, never on prose.
 * The `describe*` functions render them for humans (frames, the log, the
 * database's `fail_reason` column); nothing parses their output.
 */

/**
 * Why a lease's holder stopped counting as running it. Two are deaths (the
 * holder died while running the step) and count toward `maxLostLeases`:
 * `grace-expired` (dropped and never came back) and `restart` (after a restart
 * its holder is gone for good). The others are releases by a holder that is
 * alive and never fail a step: `bye` (a cancelled CI job), `not-resumed` (it
 * resumed without naming the step), `client-dropped` (a Task Director client,
 * which cannot resume, closed its connection).
 */
export const leaseLossWhy = Object.freeze({
  graceExpired: 'grace-expired',
  bye: 'bye',
  notResumed: 'not-resumed',
  restart: 'restart',
  clientDropped: 'client-dropped',
});
export type LeaseLossWhy = (typeof leaseLossWhy)[keyof typeof leaseLossWhy];

/** Whether a loss is a death of the holder while it ran the step (counted toward poison). */
export function isDeath(why: LeaseLossWhy): boolean {
  return why === 'grace-expired' || why === 'restart';
}

/** Why a live copy was ended by the authority: another copy won, the cohort was cancelled, or it passed its max age. */
export type AbortWhy = 'superseded' | 'cancelled' | 'max-age';

/** How a lease ended; `null` on the record while it is live. */
export type LeaseEnd =
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'failed'; readonly exitCode: number | null }
  | { readonly kind: 'lost'; readonly why: LeaseLossWhy }
  | { readonly kind: 'aborted'; readonly why: AbortWhy }
  /** Ended before ends were typed (a database from an older taskshard); only the outcome is known. */
  | { readonly kind: 'unrecorded'; readonly outcome: 'succeeded' | 'failed' | 'lost' | 'aborted' };

/** Who ended a cohort early. */
export type CancelledBy = 'admin' | 'abandoned';

/** Why a step failed for its cohort. */
export type StepFailCause =
  /** Reported failures reached `maxFailures`; the last one's peer and exit code. */
  | { readonly kind: 'attempts-exhausted'; readonly failures: number; readonly peerId: string; readonly exitCode: number | null }
  /** Its holder died while running it `maxLostLeases` times (isDeath): the step may be killing its peer. */
  | { readonly kind: 'lost-too-often'; readonly lostLeases: number; readonly last: LeaseLossWhy }
  /** A step it needs is failed. */
  | { readonly kind: 'need-failed'; readonly need: string }
  | { readonly kind: 'cohort-cancelled'; readonly by: CancelledBy }
  /** Failed before causes were typed (a database from an older taskshard): only the text is known. */
  | { readonly kind: 'legacy'; readonly reason: string };

/** Why a step was resolved as `unshared`: no connected member could build it, so each peer's universe build covers it. */
export type UnsharedCause =
  /** The step requires `requires`; no connected member had them all. `missing`: the labels no connected member had at all. */
  | { readonly kind: 'no-capable-member'; readonly requires: readonly string[]; readonly missing: readonly string[] }
  /** A step it needs is unshared. */
  | { readonly kind: 'need-unshared'; readonly need: string };

/** How a cohort ended; `null` while it is open. */
export type CohortOutcome =
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'failed'; readonly failedSteps: number }
  | { readonly kind: 'cancelled'; readonly by: CancelledBy };

/** The outcome column value of a lease end (`leases.outcome`). */
export function leaseOutcomeOf(end: LeaseEnd): 'succeeded' | 'failed' | 'lost' | 'aborted' {
  return end.kind === 'unrecorded' ? end.outcome : end.kind;
}

export function describeLoss(why: LeaseLossWhy): string {
  switch (why) {
    case 'grace-expired':
      return 'grace period expired';
    case 'bye':
      return 'peer said bye';
    case 'not-resumed':
      return 'not running it after resume';
    case 'restart':
      return 'its peer is gone after a restart';
    case 'client-dropped':
      return 'the Task Director client closed its connection';
  }
}

export function describeAbort(why: AbortWhy): string {
  switch (why) {
    case 'superseded':
      return 'another copy succeeded';
    case 'cancelled':
      return 'the step was resolved without it';
    case 'max-age':
      return 'ran past its max lease age';
  }
}

export function describeCancel(by: CancelledBy): string {
  return by === 'admin' ? 'cancelled by an admin' : 'abandoned: no peer left to finish it';
}

export function describeStepFailure(cause: StepFailCause): string {
  switch (cause.kind) {
    case 'attempts-exhausted':
      return `failed ${cause.failures} times; last on ${cause.peerId} with exit ${cause.exitCode ?? 'none'}`;
    case 'lost-too-often':
      return `lost its peer ${cause.lostLeases} times (last: ${describeLoss(cause.last)}); the step may be killing its peer`;
    case 'need-failed':
      return `needs "${cause.need}", which failed`;
    case 'cohort-cancelled':
      return describeCancel(cause.by);
    case 'legacy':
      return cause.reason;
  }
}

export function describeUnshared(cause: UnsharedCause): string {
  switch (cause.kind) {
    case 'no-capable-member':
      return cause.missing.length > 0
        ? `no connected peer has ${cause.missing.join(', ')} (requires ${cause.requires.join(', ')}); each peer's universe build covers it`
        : `no connected peer has all of ${cause.requires.join(', ')}; each peer's universe build covers it`;
    case 'need-unshared':
      return `needs "${cause.need}", which no connected peer could build; each peer's universe build covers it`;
  }
}

export function describeLeaseEnd(end: LeaseEnd): string {
  switch (end.kind) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return `failed with exit ${end.exitCode ?? 'none'}`;
    case 'lost':
      return `lost: ${describeLoss(end.why)}`;
    case 'aborted':
      return `aborted: ${describeAbort(end.why)}`;
    case 'unrecorded':
      return end.outcome;
  }
}

export function describeCohortOutcome(outcome: CohortOutcome): string {
  switch (outcome.kind) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return `failed (${outcome.failedSteps} steps)`;
    case 'cancelled':
      return describeCancel(outcome.by);
  }
}

/** The human text of a step change's cause (frames, the event log). */
export function describeStepChangeCause(
  cause:
    | { readonly kind: 'retrying'; readonly attempt: number; readonly peerId: string; readonly exitCode: number | null }
    | { readonly kind: 'admin-retry' }
    | { readonly kind: 'unpublished'; readonly peerId: string; readonly exitCode: number | null }
    | { readonly kind: 'failed'; readonly cause: StepFailCause },
): string {
  switch (cause.kind) {
    case 'unpublished':
      return `built on ${cause.peerId} but not in the remote cache (--verify exit ${cause.exitCode ?? 'none'}); leasing it again, on another peer when there is one`;
    case 'retrying':
      return `attempt ${cause.attempt} failed on ${cause.peerId} with exit ${cause.exitCode ?? 'none'}; retrying, on another peer when there is one`;
    case 'admin-retry':
      return 'retried by an admin';
    case 'failed':
      return describeStepFailure(cause.cause);
  }
}
