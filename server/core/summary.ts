import type { CompleteSummary } from '../../shared/protocol.js';
import { describeStepFailure } from './causes.js';
import type { Cohort } from './cohort.js';

/** The estimate to use for a step's duration when it has no measured one. */
export type EstimateFn = (cohort: Cohort, stepId: string) => number;

/** What one peer is told in `complete`: who built what, and the time it did not spend. */
export function peerSummary(cohort: Cohort, peerId: string, estimateMs: EstimateFn): CompleteSummary {
  const summary: CompleteSummary = { builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0 };
  let savedMs = 0;
  for (const step of cohort.ordered) {
    if (step.status === 'succeeded') {
      const ms = step.durationMs ?? estimateMs(cohort, step.stepId);
      if (step.fromMemo) {
        summary.fromMemo.push(step.stepId);
        savedMs += ms;
      } else if (step.builtBy === peerId) {
        summary.builtHere.push(step.stepId);
      } else if (step.builtBy !== null) {
        summary.builtByOthers.push({ stepId: step.stepId, peerId: step.builtBy });
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
    }
  }
  summary.savedSec = Math.round(savedMs) / 1000;
  return summary;
}

/**
 * Machine time the cohort saved: without taskshard every member would build
 * every succeeded step; with it each was built once (or not at all, from memo).
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
