import { canRun, missingLabels } from '../../shared/labels.js';
import { describeUnshared, type UnsharedCause } from './causes.js';
import type { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { Registration, StepRecord } from './records.js';
import type { PeerState } from './peer-table.js';
import type { SchedulerState } from './scheduler-state.js';
import { isResolved, transitionStep } from './step-status.js';

/**
 * Labels in the scheduler (issue 19). A peer's labels come with its
 * registration; a step's `requires` with the schema. The rules, each only in
 * cohorts where some step requires labels (`Cohort.hasRequirements`):
 * - a peer is granted only steps whose `requires` its labels include (step-picker.ts);
 * - a peer that can run none of its cohort's unresolved steps is not kept
 *   waiting: it is told `complete` at once (released) and its universe build
 *   covers the rest;
 * - when nothing runs in an open cohort and no connected working member can
 *   run a pending labelled step, that step is resolved `unshared` (typed
 *   cause: the labels nobody had), and so is every pending step that needs
 *   an unshared one. Steps without `requires` are never unshared.
 */

const labelSets = new WeakMap<Registration, ReadonlySet<string>>();

/** A peer's labels as a set (cached per registration, which never changes while the peer is registered). */
export function labelsOf(peer: PeerState): ReadonlySet<string> {
  const reg = peer.record.registration;
  let set = labelSets.get(reg);
  if (set === undefined) {
    set = new Set(reg.labels ?? []);
    labelSets.set(reg, set);
  }
  return set;
}

/** Whether a peer with `labels` can run at least one unresolved step of the cohort. O(steps × requires). */
export function canRunSomeUnresolved(cohort: Cohort, labels: ReadonlySet<string>): boolean {
  if (cohort.unresolved === 0) return false;
  for (const step of cohort.ordered) if (!isResolved(step.status) && canRun(cohort.requiresOf(step.stepId), labels)) return true;
  return false;
}

/** The unresolved steps a peer with `labels` cannot run, with what they require (for its summary when it is released). */
export function stepsNotRunnable(cohort: Cohort, labels: ReadonlySet<string>): { stepId: string; requires: string[] }[] {
  const out: { stepId: string; requires: string[] }[] = [];
  if (!cohort.hasRequirements) return out;
  for (const step of cohort.ordered) {
    const requires = cohort.requiresOf(step.stepId);
    if (!isResolved(step.status) && !canRun(requires, labels)) out.push({ stepId: step.stepId, requires: [...requires!] });
  }
  return out;
}

/**
 * The label sets of connected members that still take work (not told `complete`): these decide whether
 * someone can run a step. `connected` holds every connected member's, for naming the labels nobody had.
 */
function memberLabels(state: SchedulerState, cohort: Cohort): { connected: ReadonlySet<string>[]; working: ReadonlySet<string>[] } {
  const connected: ReadonlySet<string>[] = [];
  const working: ReadonlySet<string>[] = [];
  for (const peer of state.peers.members(cohort)) {
    if (peer.record.status !== 'connected') continue;
    connected.push(labelsOf(peer));
    if (peer.work.kind !== 'done') working.push(labelsOf(peer));
  }
  return { connected, working };
}

/**
 * Nothing runs in the cohort: resolves as `unshared` every pending step with
 * `requires` that no connected working member can run, then every pending step
 * that needs an unshared one. Not while a lease is live (a capable peer may
 * still join), nor with no member connected at all (they may come back).
 * Returns whether any step was resolved.
 */
export function resolveUnshared(state: SchedulerState, tx: CoreTx, cohort: Cohort): boolean {
  if (!cohort.hasRequirements || cohort.liveLeases.size > 0 || cohort.unresolved === 0) return false;
  const { connected, working } = memberLabels(state, cohort);
  if (connected.length === 0) return false;
  const unshared: StepRecord[] = [];
  for (const step of cohort.ordered) {
    const requires = cohort.requiresOf(step.stepId);
    if (step.status !== 'pending' || requires === undefined) continue;
    if (working.some((labels) => canRun(requires, labels))) continue;
    const missing = requires.filter((label) => !connected.some((labels) => labels.has(label)));
    markUnshared(tx, cohort, step, { kind: 'no-capable-member', requires: [...requires], missing });
    unshared.push(step);
  }
  // Whatever needs an unshared step cannot start either (its need will never succeed here).
  for (let i = 0; i < unshared.length; i++) {
    for (const dependentId of cohort.dependents.get(unshared[i]!.stepId)!) {
      const dependent = cohort.steps.get(dependentId)!;
      if (dependent.status !== 'pending') continue;
      markUnshared(tx, cohort, dependent, { kind: 'need-unshared', need: unshared[i]!.stepId });
      unshared.push(dependent);
    }
  }
  return unshared.length > 0;
}

function markUnshared(tx: CoreTx, cohort: Cohort, step: StepRecord, cause: UnsharedCause): void {
  transitionStep(tx.journal, step, 'unshared');
  tx.journal.set(step, { unsharedCause: cause, resolvedAtMs: tx.now });
  cohort.count(tx.journal, -1, 0);
  tx.step(step);
  tx.event(cohort.id, 'step.unshared', { stepId: step.stepId, detail: describeUnshared(cause) });
}

/** One line for the event log: why a peer was released, e.g. `train needs gpu`. */
export function describeRelease(cohort: Cohort, labels: ReadonlySet<string>): string {
  const notRunnable = stepsNotRunnable(cohort, labels).map((s) => `${s.stepId} needs ${missingLabels(s.requires, labels).join(', ')}`);
  return `nothing left it can run (${notRunnable.join('; ')}); its universe build covers the rest`;
}
