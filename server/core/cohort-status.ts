import { defineMachine } from '../../shared/state-machine.js';
import type { Journal } from './journal.js';
import type { CohortRecord, CohortStatus } from './records.js';
import { cohortStatus } from './records.js';

/**
 * Cohort lifecycle (DESIGN §5-§6).
 *
 * States: open, complete, cancelled (the `cohortStatus` object in records.ts).
 * Edges:
 *   open      -> complete   every step is resolved (outcome succeeded or failed)
 *   open      -> cancelled  an admin cancelled it; every member left on purpose (abandoned at once); or it had
 *                          no active peer for the idle-cohort TTL (abandoned)
 *   complete  -> open       an admin retried a failed step
 * Invariants: `outcome` is null iff open; `resolvedAtMs` is null iff open;
 * an open cohort has an unresolved step (else it completes in the same input);
 * an open cohort with no live lease and a connected idle member has an
 * assignable step; cancelled is final.
 */
export const cohortMachine = defineMachine<CohortStatus>('cohort', cohortStatus, {
  open: ['complete', 'cancelled'],
  complete: ['open'],
  cancelled: [],
});

/** Moves a cohort along an allowed edge (journaled), or throws `IllegalTransitionError`. */
export function transitionCohort(journal: Journal, cohort: CohortRecord, to: CohortStatus): void {
  if (!cohortMachine.can(cohort.status, to)) cohortMachine.check(`cohort ${cohort.cohortId}`, cohort.status, to);
  journal.setState(cohort, 'status', to);
}
