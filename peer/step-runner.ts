import { limits } from '../shared/limits.js';

/** `step` for a shared step, `universe` for the final build every peer runs itself. */
export type StepPhase = 'step' | 'universe';

/** What a runner is asked to build. */
export interface StepContext {
  /** The step id, or `universe` for the final build. */
  readonly stepId: string;
  /** The step's target, or the schema's universe target. */
  readonly target: string;
  readonly phase: StepPhase;
  /** Aborted when the authority says stop (superseded, cancelled, lease lost) or the peer is interrupted. */
  readonly signal: AbortSignal;
}

/** What a runner reports. `logTail` (at most 4096 characters are kept) is sent to the authority on failure. */
export interface StepOutcome {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly logTail?: string;
  /** Built, but not in the remote cache (`--verify` failed; see peer/verify.ts): why. Requires `ok: false`. */
  readonly unpublished?: string;
  /**
   * Set when the step could not start at all (e.g. `ENOENT`): this peer cannot
   * build anything, so it releases its lease instead of reporting a failure
   * that would count against the step.
   */
  readonly startError?: string;
}

/**
 * Builds one step. The CLI's runner spawns COMMAND (see `createCommandRunner`);
 * library users pass their own. It must settle soon after `signal` aborts.
 */
export type StepRunner = (ctx: StepContext) => Promise<StepOutcome>;

/** A finished run as the peer records it. */
export interface StepRun {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly logTail: string | undefined;
  readonly durationMs: number;
  /** The signal was aborted before the run settled: the result is not reported. */
  readonly aborted: boolean;
  /** See {@link StepOutcome.unpublished}; null otherwise. */
  readonly unpublished: string | null;
  /** The step could not start (e.g. `ENOENT`); see {@link StepOutcome.startError}. */
  readonly startError: string | null;
}

const maxDurationMs = limits.maxEstimateSec * 1000 * 4;

/**
 * Calls the runner and normalizes what comes back: a throw or a malformed
 * outcome is a failed run (the message becomes the log tail), the exit code is
 * clamped to what the protocol carries, the tail is cut to its cap.
 */
export async function runTimed(runner: StepRunner, ctx: StepContext, now: () => number): Promise<StepRun> {
  const startedAtMs = now();
  let outcome: StepOutcome;
  try {
    outcome = await runner(ctx);
  } catch (err) {
    outcome = { ok: false, exitCode: null, logTail: `taskshard: the step runner threw: ${(err as Error)?.message ?? String(err)}` };
  }
  const durationMs = Math.min(Math.max(0, Math.round(now() - startedAtMs)), maxDurationMs);
  if (typeof outcome !== 'object' || outcome === null || typeof outcome.ok !== 'boolean') {
    return { ok: false, exitCode: null, logTail: 'taskshard: the step runner returned no { ok, exitCode }', durationMs, aborted: ctx.signal.aborted, unpublished: null, startError: null };
  }
  const exitCode = typeof outcome.exitCode === 'number' && Number.isInteger(outcome.exitCode) ? Math.min(Math.max(outcome.exitCode, -1024), 1024) : null;
  const logTail = typeof outcome.logTail === 'string' && outcome.logTail.length > 0 ? outcome.logTail.slice(-limits.maxLogTailChars) : undefined;
  const unpublished = !outcome.ok && typeof outcome.unpublished === 'string' && outcome.unpublished !== '' ? outcome.unpublished : null;
  const startError = !outcome.ok && typeof outcome.startError === 'string' && outcome.startError !== '' ? outcome.startError.slice(0, 64) : null;
  return { ok: outcome.ok, exitCode, logTail, durationMs, aborted: ctx.signal.aborted, unpublished, startError };
}
