import { leaseOutcomeOf } from '../core/causes.js';
import type { CohortRecord, LeaseRecord, StepRecord } from '../core/records.js';
import { StoreConflictError } from '../core/store-port.js';

/**
 * What a refused guarded write means, for both stores. Built only when a guard refused one (the
 * text of every write's possible refusal was made with every write before).
 */

/** A cohort write that the cancelled guard refused. */
export function cohortConflict(r: CohortRecord): StoreConflictError {
  return new StoreConflictError('cohort-cancelled', `cohorts[${r.cohortId}]`, `the cohort is cancelled; refusing to make it ${r.status}`);
}

/** A cohort written as existing (no `created`) whose row is missing: a bug in the writer, not a conflict. */
export function missingCohortError(cohortId: string): Error {
  return new Error(`cohorts[${cohortId}]: written as an existing cohort, but the store has no such row; the whole batch was rolled back`);
}

/** A step write that the succeeded guard refused. */
export function stepConflict(r: StepRecord): StoreConflictError {
  const detail = `the step already succeeded; refusing to make it ${r.status}${r.status === 'succeeded' ? ` (built by ${r.builtBy ?? 'a memo'})` : ''}`;
  return new StoreConflictError('step-succeeded', `steps[${r.cohortId}/${r.stepId}]`, detail);
}

/** A lease write that the ended guard refused. */
export function leaseConflict(r: LeaseRecord): StoreConflictError {
  const outcome = r.end === null ? null : leaseOutcomeOf(r.end);
  const detail = `the lease already ended; refusing to ${outcome === null ? 'make it live again' : `end it again as ${outcome}`}`;
  return new StoreConflictError('lease-ended', `leases[${r.leaseId}]`, detail);
}
