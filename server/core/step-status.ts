import { defineMachine } from '../../shared/state-machine.js';
import type { Journal } from './journal.js';

/**
 * Step lifecycle (DESIGN §6).
 *
 * States: pending, leased, succeeded, failed.
 * Edges:
 *   pending  -> leased     an idle peer is granted the step
 *   pending  -> succeeded  reused from memo, or a late completion of a lost lease
 *   pending  -> failed     a step it needs failed; it lost its peer too often; cohort cancelled
 *   pending  -> unshared   nothing runs in its cohort, and no connected member has the labels it
 *                          requires (or it needs an unshared step): each peer's universe build covers it
 *   leased   -> succeeded  a live copy finished ok (first success wins)
 *   leased   -> pending    its only live lease was lost, or failed with a retry left
 *   leased   -> failed     failed with no retry left; cohort cancelled
 *   failed   -> pending    an admin retried it (or a need of it), and no need of it is failed
 * Invariants (invariants.ts): succeeded is final; a step is `leased` iff it
 * has a live lease; at most two live leases, the second marked backup; a
 * pending step has no failed need; `failCause` is set iff `failed`;
 * `unsharedCause` is set iff `unshared`; unshared is final; attempts only rise.
 */
export const stepStatus = Object.freeze({
  pending: 'pending',
  leased: 'leased',
  succeeded: 'succeeded',
  failed: 'failed',
  unshared: 'unshared',
});

export type StepStatus = (typeof stepStatus)[keyof typeof stepStatus];

export const stepMachine = defineMachine<StepStatus>('step', stepStatus, {
  pending: ['leased', 'succeeded', 'failed', 'unshared'],
  leased: ['succeeded', 'pending', 'failed'],
  succeeded: [],
  failed: ['pending'],
  unshared: [],
});

/** Moves a step along an allowed edge (journaled), or throws `IllegalTransitionError`. */
export function transitionStep(journal: Journal, step: { readonly cohortId: string; readonly stepId: string; readonly status: StepStatus }, to: StepStatus): void {
  // The name is made only for the error: `can` first (no string per transition).
  if (!stepMachine.can(step.status, to)) stepMachine.check(`step ${step.cohortId}/${step.stepId}`, step.status, to);
  journal.setState(step, 'status', to);
}

export function isResolved(status: StepStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'unshared';
}
