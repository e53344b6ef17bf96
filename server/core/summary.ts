import type { CompleteSummary } from '../../shared/protocol.js';
import { describeStepFailure, describeUnshared } from './causes.js';
import type { Cohort } from './cohort.js';
import { stepsNotRunnable } from './peer-labels.js';

/** The estimate to use for a step's duration when it has no measured one. */
export type EstimateFn = (cohort: Cohort, stepId: string) => number;

/** When the peer joined its cohort and the time of its `complete`, both on the authority's clock (ms). */
export interface PeerSpan {
  readonly joinedAtMs: number;
  readonly nowMs: number;
}

/**
 * What one peer is told in `complete`, in two units: who built what and the
 * build time it did not spend (`savedSec`, steps others built or the memo
 * had); its own build time (`builtSec`); what building every step alone would
 * have taken (`aloneSec`: measured durations, estimates for steps without
 * one; steps reused from a memo are cache hits alone too and count 0); and its runner time so far, building and waiting (`spentSec`, join to
 * now). The peer's runner-time saving is `aloneSec − spentSec`, negative when
 * waiting cost it more than building alone would have. Where steps require
 * labels: `unshared` lists the steps no connected peer could build, and
 * `notRunnable` the unresolved steps this peer (with `labels`) cannot run,
 * when it is released before the cohort completes; each only when non-empty,
 * so peers that know nothing of labels never see them. `withDurations` (peers with targeted updates):
 * each step built by others carries its measured duration.
 */
export function peerSummary(cohort: Cohort, peerId: string, estimateMs: EstimateFn, span: PeerSpan, labels: ReadonlySet<string> = new Set(), withDurations = false): CompleteSummary {
  const summary: CompleteSummary = { builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0 };
  const unshared: { stepId: string; reason: string }[] = [];
  let savedMs = 0;
  let builtMs = 0;
  let aloneMs = 0;
  for (const step of cohort.ordered) {
    // A step reused from a memo is in the remote cache already: alone, this peer would not build it either.
    if (!step.fromMemo) aloneMs += step.durationMs ?? estimateMs(cohort, step.stepId);
    if (step.status === 'succeeded') {
      const ms = step.durationMs ?? estimateMs(cohort, step.stepId);
      if (step.fromMemo) {
        summary.fromMemo.push(step.stepId);
        savedMs += ms;
      } else if (step.builtBy === peerId) {
        summary.builtHere.push(step.stepId);
        builtMs += ms;
      } else if (step.builtBy !== null) {
        // A peer with targeted updates was not told of this step as it finished: the duration comes here.
        summary.builtByOthers.push(withDurations && step.durationMs !== null ? { stepId: step.stepId, peerId: step.builtBy, durationMs: step.durationMs } : { stepId: step.stepId, peerId: step.builtBy });
        savedMs += ms;
      }
    } else if (step.status === 'failed') {
      summary.failed.push({
        stepId: step.stepId,
        peerId: step.failPeerId,
        exitCode: step.failExitCode,
        reason: step.failCause === null ? 'failed' : describeStepFailure(step.failCause),
        ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
      });
    } else if (step.status === 'unshared') {
      unshared.push({ stepId: step.stepId, reason: step.unsharedCause ? describeUnshared(step.unsharedCause) : 'unshared' });
    }
  }
  if (unshared.length > 0) summary.unshared = unshared;
  const notRunnable = stepsNotRunnable(cohort, labels);
  if (notRunnable.length > 0) summary.notRunnable = notRunnable;
  summary.savedSec = Math.round(savedMs) / 1000;
  summary.builtSec = Math.round(builtMs) / 1000;
  summary.aloneSec = Math.round(aloneMs) / 1000;
  summary.spentSec = Math.max(0, Math.round(span.nowMs - span.joinedAtMs)) / 1000;
  return summary;
}

/**
 * Build time the cohort saved: without taskshard every member would build
 * every succeeded step; with it each was built once (or not at all, from memo).
 * Runner time is per peer (see {@link peerSummary}).
 */
export function cohortSecondsSaved(cohort: Cohort, estimateMs: EstimateFn): number {
  let everyoneMs = 0;
  let builtMs = 0;
  for (const step of cohort.ordered) {
    if (step.status !== 'succeeded') continue;
    const ms = step.durationMs ?? estimateMs(cohort, step.stepId);
    everyoneMs += ms * cohort.members.size;
    if (!step.fromMemo) builtMs += ms;
  }
  return Math.max(0, everyoneMs - builtMs) / 1000;
}
