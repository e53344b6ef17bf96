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

type BuiltByOther = CompleteSummary['builtByOthers'][number];
type FailedEntry = CompleteSummary['failed'][number];

/**
 * The part of every member's `complete` summary that does not depend on the member, made once per
 * cohort completion (issue 17: 200 members of a 1,000-step cohort each walked every step): the
 * steps built by peers in schema order (the `builtByOthers` entries, shared and frozen, both
 * forms), where each builder's steps are, the memo and failed and unshared lists, and the sums.
 * Valid for one input: it reads step and duration state at the time it is made.
 */
export interface SummaryBase {
  /** Succeeded steps a peer built (not from memo), in schema order. */
  readonly built: readonly { readonly stepId: string; readonly peerId: string; readonly ms: number }[];
  /** `built` as `builtByOthers` entries without durations, and (made on first use) with them. */
  readonly entries: readonly BuiltByOther[];
  entriesWithDurations: readonly BuiltByOther[] | null;
  /** Each builder's positions in `built`, ascending. */
  readonly byBuilder: ReadonlyMap<string, readonly number[]>;
  readonly fromMemo: readonly string[];
  readonly failed: readonly FailedEntry[];
  readonly unshared: readonly { stepId: string; reason: string }[];
  /** Sums in ms: memo steps, steps peers built, and every step as one peer alone would build them. */
  readonly memoMs: number;
  readonly builtMs: number;
  readonly aloneMs: number;
  /** Every memo and built duration is a whole number of ms (sums and differences of them are exact). */
  readonly wholeMs: boolean;
  /** The succeeded steps with their builder (null: from memo) and ms, in schema order (for the exact per-peer sum when `wholeMs` is false). */
  readonly succeeded: readonly { readonly builtBy: string | null; readonly fromMemo: boolean; readonly ms: number }[];
  /** The durations of `built`, null where a step has none recorded (the entry then carries none). */
  readonly durations: readonly (number | null)[];
}

/** The member-independent part of the cohort's `complete` summaries, as its steps stand now. O(steps). */
export function summaryBase(cohort: Cohort, estimateMs: EstimateFn): SummaryBase {
  const built: { stepId: string; peerId: string; ms: number }[] = [];
  const entries: BuiltByOther[] = [];
  const durations: (number | null)[] = [];
  const byBuilder = new Map<string, number[]>();
  const fromMemo: string[] = [];
  const failed: FailedEntry[] = [];
  const unshared: { stepId: string; reason: string }[] = [];
  const succeeded: { builtBy: string | null; fromMemo: boolean; ms: number }[] = [];
  let memoMs = 0;
  let builtMs = 0;
  let aloneMs = 0;
  let wholeMs = true;
  for (const step of cohort.ordered) {
    // A step reused from a memo is in the remote cache already: alone, a peer would not build it either.
    if (!step.fromMemo) aloneMs += step.durationMs ?? estimateMs(cohort, step.stepId);
    if (step.status === 'succeeded') {
      const ms = step.durationMs ?? estimateMs(cohort, step.stepId);
      if (!Number.isInteger(ms)) wholeMs = false;
      succeeded.push({ builtBy: step.fromMemo ? null : step.builtBy, fromMemo: step.fromMemo, ms });
      if (step.fromMemo) {
        fromMemo.push(step.stepId);
        memoMs += ms;
      } else if (step.builtBy !== null) {
        const at = built.length;
        built.push({ stepId: step.stepId, peerId: step.builtBy, ms });
        entries.push(Object.freeze({ stepId: step.stepId, peerId: step.builtBy }));
        durations.push(step.durationMs);
        const mine = byBuilder.get(step.builtBy);
        if (mine) mine.push(at);
        else byBuilder.set(step.builtBy, [at]);
        builtMs += ms;
      }
    } else if (step.status === 'failed') {
      failed.push(
        Object.freeze({
          stepId: step.stepId,
          peerId: step.failPeerId,
          exitCode: step.failExitCode,
          reason: step.failCause === null ? 'failed' : describeStepFailure(step.failCause),
          ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
        }),
      );
    } else if (step.status === 'unshared') {
      unshared.push(Object.freeze({ stepId: step.stepId, reason: step.unsharedCause ? describeUnshared(step.unsharedCause) : 'unshared' }));
    }
  }
  if (!Number.isSafeInteger(memoMs + builtMs)) wholeMs = false;
  return { built, entries, entriesWithDurations: null, byBuilder, fromMemo, failed, unshared, memoMs, builtMs, aloneMs, wholeMs, succeeded, durations };
}

/** `builtByOthers` entries carrying each build's duration (peers with targeted updates), made once per base. */
function entriesWithDurations(base: SummaryBase): readonly BuiltByOther[] {
  if (base.entriesWithDurations === null) {
    base.entriesWithDurations = base.built.map((b, i) => {
      const durationMs = base.durations[i]!;
      return durationMs !== null ? Object.freeze({ stepId: b.stepId, peerId: b.peerId, durationMs }) : base.entries[i]!;
    });
  }
  return base.entriesWithDurations;
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
 *
 * Made from the cohort's {@link SummaryBase}: per peer, only its own steps are looked at (and the
 * shared entries copied around them), not every step of the cohort.
 */
export function peerSummary(cohort: Cohort, base: SummaryBase, peerId: string, span: PeerSpan, labels: ReadonlySet<string> = new Set(), withDurations = false): CompleteSummary {
  const mine = base.byBuilder.get(peerId) ?? [];
  const all = withDurations ? entriesWithDurations(base) : base.entries;
  // The shared entries around the member's own, as slices (copied natively, not entry by entry).
  const runs: BuiltByOther[][] = [];
  let from = 0;
  for (const at of mine) {
    if (at > from) runs.push(all.slice(from, at));
    from = at + 1;
  }
  const rest = all.slice(from);
  const builtByOthers = runs.length === 0 ? rest : runs[0]!.concat(...runs.slice(1), rest);
  let builtMs = 0;
  for (const at of mine) builtMs += base.built[at]!.ms;
  const summary: CompleteSummary = { builtHere: mine.map((at) => base.built[at]!.stepId), builtByOthers, fromMemo: base.fromMemo.slice(), failed: base.failed.slice(), savedSec: 0 };
  if (base.unshared.length > 0) summary.unshared = base.unshared.slice();
  const notRunnable = stepsNotRunnable(cohort, labels);
  if (notRunnable.length > 0) summary.notRunnable = notRunnable;
  summary.savedSec = Math.round(savedMsOf(base, peerId, builtMs)) / 1000;
  summary.builtSec = Math.round(builtMs) / 1000;
  summary.aloneSec = Math.round(base.aloneMs) / 1000;
  summary.spentSec = Math.max(0, Math.round(span.nowMs - span.joinedAtMs)) / 1000;
  return summary;
}

/**
 * Build time the peer did not spend: memo steps and steps others built. From the base's sums when
 * every duration is a whole number of ms (exact); otherwise summed in schema order, as always.
 */
function savedMsOf(base: SummaryBase, peerId: string, ownMs: number): number {
  if (base.wholeMs) return base.memoMs + (base.builtMs - ownMs);
  let savedMs = 0;
  for (const s of base.succeeded) if (s.fromMemo || (s.builtBy !== null && s.builtBy !== peerId)) savedMs += s.ms;
  return savedMs;
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
