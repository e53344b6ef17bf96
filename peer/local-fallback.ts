import type { StepDef } from '../shared/schema-file.js';
import { formatDuration, formatExit, type PeerReport } from './report.js';
import { runTimed, type StepRun, type StepRunner } from './step-runner.js';

/**
 * Fail-open: this peer builds the steps nobody is known to have built, in
 * dependency order, and stops at the first failure (its universe build could
 * not succeed anyway, and CI time is better spent reporting it).
 */
export interface LocalBuild {
  readonly built: readonly string[];
  /** The step that failed, with its run; null when every step succeeded. */
  readonly failed: { readonly stepId: string; readonly run: StepRun } | null;
  /** The signal aborted before every step ran. */
  readonly interrupted: boolean;
}

export async function buildLocally(
  order: readonly StepDef[],
  runner: StepRunner,
  report: PeerReport,
  now: () => number,
  signal: AbortSignal,
  onRun: (stepId: string, run: StepRun) => void = () => undefined,
): Promise<LocalBuild> {
  const built: string[] = [];
  for (const step of order) {
    if (signal.aborted) return { built, failed: null, interrupted: true };
    report.assignment(`step ${step.id} building here (${step.target})`);
    const run = await runTimed(runner, { stepId: step.id, target: step.target, phase: 'step', signal }, now);
    onRun(step.id, run);
    if (run.aborted) return { built, failed: null, interrupted: true };
    if (run.unpublished !== null) {
      report.warning(`step ${step.id} built here in ${formatDuration(run.durationMs)} but NOT published (${run.unpublished}); the universe build here does not need the cache`);
      built.push(step.id);
      continue;
    }
    if (!run.ok) {
      const how = run.startError !== null ? `could not start (${run.startError})` : `FAILED here with ${formatExit(run.exitCode)} after ${formatDuration(run.durationMs)}`;
      report.failure(`step ${step.id} ${how}`, run.startError !== null ? run.logTail : undefined);
      return { built, failed: { stepId: step.id, run }, interrupted: false };
    }
    report.event(`step ${step.id} finished in ${formatDuration(run.durationMs)}`);
    built.push(step.id);
  }
  return { built, failed: null, interrupted: false };
}
