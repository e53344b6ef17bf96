import { canRun } from '../../shared/labels.js';
import type { Cohort } from './cohort.js';
import type { CoreConfig } from './core-types.js';
import type { Journal } from './journal.js';
import type { ReadyEntry } from './ready-queue.js';
import type { StepRecord } from './records.js';

/**
 * Choosing steps for a cohort's idle peers (DESIGN §6):
 * 0. only steps the peer can run: its labels include all of the step's
 *    `requires` (a peer without labels, such as a Task Director client, gets
 *    only steps without `requires`); everything below works among those;
 * 1. pending steps whose needs have all succeeded, skipping a step a peer
 *    already failed while another peer could take it;
 * 2. best first: retries (a failed or lost attempt) before anything else, then
 *    the longest critical path, then schema order;
 * 3. nothing pending for a peer: a backup copy of a step running far past its
 *    estimate (`max(stragglerFactor × estimate, stragglerMinMs)`), never one
 *    the peer holds or failed, at most one backup per step. Peers that cannot
 *    resume (Task Director clients) neither take backups nor get backed up:
 *    their protocol has no notion of a second copy.
 * The ready steps come from the cohort's ready queue (ready-queue.ts): taking
 * one costs O(log steps), plus one pop and push back per step skipped for this
 * peer (labels, a step it failed). Backup candidates are looked for only
 * when a backup-capable peer found nothing ready, among the live leases.
 */
export interface PickContext {
  readonly config: CoreConfig;
  readonly now: number;
  readonly estimateMs: (cohort: Cohort, stepId: string) => number;
  /** Whether some other connected, working member of the cohort, with the labels the step requires, could take the step. */
  readonly anotherPeerCouldTake: (cohort: Cohort, step: StepRecord, peerId: string) => boolean;
  /** Whether this peer may take, or be shadowed by, a backup copy. */
  readonly backupCapable: (peerId: string) => boolean;
  /** Whether the step's estimate is real (recorded or `estimateSec`), not the default guess. */
  readonly estimateKnown: (cohort: Cohort, stepId: string) => boolean;
}

export interface StepChoice {
  readonly step: StepRecord;
  readonly backup: boolean;
}

export class DispatchPlan {
  /** Backup candidates, best first; found when a peer first needs one (null: not yet looked for). */
  private stragglers: StepRecord[] | null = null;
  /** Steps this plan handed out: leased just now, so never backup candidates in the same dispatch. */
  private taken: StepRecord[] | null = null;

  constructor(
    private readonly ctx: PickContext,
    private readonly cohort: Cohort,
    private readonly journal: Journal,
  ) {}

  /** The best step this peer (with `labels`) can run, taken from the cohort's ready queue; null when there is nothing for it. */
  take(peerId: string, labels: ReadonlySet<string>): StepChoice | null {
    const { cohort, ctx } = this;
    const labelled = cohort.hasRequirements;
    const skipped: ReadyEntry[] = [];
    let chosen: StepRecord | null = null;
    for (let entry = cohort.ready.take(this.journal); entry !== null; entry = cohort.ready.take(this.journal)) {
      const step = entry.step;
      if ((labelled && !canRun(cohort.requiresOf(step.stepId), labels)) || (step.failedOn.includes(peerId) && ctx.anotherPeerCouldTake(cohort, step, peerId))) {
        skipped.push(entry); // for the next peer
        continue;
      }
      chosen = step;
      break;
    }
    for (const entry of skipped) cohort.ready.putBack(entry);
    if (chosen !== null) {
      (this.taken ??= []).push(chosen);
      return { step: chosen, backup: false };
    }
    if (!ctx.backupCapable(peerId)) return null;
    this.stragglers ??= this.findStragglers();
    for (let i = 0; i < this.stragglers.length; i++) {
      const step = this.stragglers[i]!;
      if (cohort.live(step.stepId)[0]?.peerId === peerId || step.failedOn.includes(peerId)) continue;
      if (labelled && !canRun(cohort.requiresOf(step.stepId), labels)) continue;
      this.stragglers.splice(i, 1);
      return { step, backup: true };
    }
    return null;
  }

  /** Running steps past their backup time, best first: looked for only among live leases, and only once a backup is possible. */
  private findStragglers(): StepRecord[] {
    const { cohort, ctx } = this;
    const found: StepRecord[] = [];
    if (ctx.config.stragglerFactor <= 0) return found;
    for (const [stepId, live] of cohort.liveLeases) {
      const step = cohort.steps.get(stepId)!;
      if (live.length !== 1 || (this.taken !== null && this.taken.includes(step))) continue;
      const at = stragglerAtMs(ctx, cohort, step);
      if (at !== null && ctx.now >= at) found.push(step);
    }
    const priority = (s: StepRecord): number => cohort.priorityMs.get(s.stepId) ?? 0;
    const index = (s: StepRecord): number => cohort.schemaIndex.get(s.stepId)!;
    return found.sort((a, b) => priority(b) - priority(a) || index(a) - index(b));
  }
}

/** When a running step becomes eligible for a backup copy, or null when it cannot get one. */
export function stragglerAtMs(ctx: Pick<PickContext, 'config' | 'estimateMs' | 'backupCapable' | 'estimateKnown'>, cohort: Cohort, step: StepRecord): number | null {
  if (ctx.config.stragglerFactor <= 0 || step.status !== 'leased' || !ctx.estimateKnown(cohort, step.stepId)) return null;
  const live = cohort.live(step.stepId);
  if (live.length !== 1 || !ctx.backupCapable(live[0]!.peerId)) return null;
  const threshold = Math.max(ctx.config.stragglerFactor * ctx.estimateMs(cohort, step.stepId), ctx.config.stragglerMinMs);
  return live[0]!.startedAtMs + threshold;
}
