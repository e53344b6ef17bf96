/**
 * Step lifecycle (DESIGN §6).
 *
 * States: pending, leased, succeeded, failed.
 * Edges:
 *   pending  -> leased     an idle peer is granted the step
 *   pending  -> succeeded  reused from memo, or a late completion of a lost lease
 *   pending  -> failed     a step it needs failed; it lost its peer too often; cohort cancelled
 *   leased   -> succeeded  a live copy finished ok (first success wins)
 *   leased   -> pending    its only live lease was lost, or failed with a retry left
 *   leased   -> failed     failed with no retry left; cohort cancelled
 *   failed   -> pending    an admin retried it
 * Invariants: succeeded is final; a step is `leased` iff it has at least one
 * live lease; at most two live leases (the second marked as a backup).
 */
export const stepStatus = Object.freeze({
  pending: 'pending',
  leased: 'leased',
  succeeded: 'succeeded',
  failed: 'failed',
});

export type StepStatus = (typeof stepStatus)[keyof typeof stepStatus];

const allowedEdges: Readonly<Record<StepStatus, readonly StepStatus[]>> = {
  pending: ['leased', 'succeeded', 'failed'],
  leased: ['succeeded', 'pending', 'failed'],
  succeeded: [],
  failed: ['pending'],
};

/** Thrown on an illegal edge: always a bug in the core, never a peer's fault. */
export class IllegalTransitionError extends Error {
  constructor(what: string, from: string, to: string) {
    super(`illegal transition of ${what}: ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

/** Moves `subject.status` along an allowed edge, or throws. */
export function transitionStep(subject: { stepId: string; status: StepStatus }, to: StepStatus): void {
  if (!allowedEdges[subject.status].includes(to)) {
    throw new IllegalTransitionError(`step ${subject.stepId}`, subject.status, to);
  }
  subject.status = to;
}

export function isResolved(status: StepStatus): boolean {
  return status === 'succeeded' || status === 'failed';
}
