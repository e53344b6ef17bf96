import { canRun } from '../../shared/labels.js';
import type { Cohort } from './cohort.js';
import type { CoreConfig } from './core-types.js';
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
 * One plan serves every idle peer of a dispatch: O(steps log steps + peers).
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
  private readonly ready: StepRecord[];
  private readonly stragglers: StepRecord[];

  constructor(
    private readonly ctx: PickContext,
    private readonly cohort: Cohort,
  ) {
    const retry = (s: StepRecord): number => (s.failures > 0 || s.lostLeases > 0 ? 1 : 0);
    const priority = (s: StepRecord): number => cohort.priorityMs.get(s.stepId) ?? 0;
    const index = (s: StepRecord): number => cohort.schemaIndex.get(s.stepId)!;
    this.ready = cohort.ordered.filter((s) => s.status === 'pending' && cohort.needsMet(s.stepId));
    this.ready.sort((a, b) => retry(b) - retry(a) || priority(b) - priority(a) || index(a) - index(b));
    this.stragglers = cohort.ordered.filter((s) => {
      const at = stragglerAtMs(ctx, cohort, s);
      return at !== null && ctx.now >= at;
    });
    this.stragglers.sort((a, b) => priority(b) - priority(a) || index(a) - index(b));
  }

  /** The best step this peer (with `labels`) can run, removed from the plan; null when there is nothing for it. */
  take(peerId: string, labels: ReadonlySet<string>): StepChoice | null {
    const labelled = this.cohort.hasRequirements;
    for (let i = 0; i < this.ready.length; i++) {
      const step = this.ready[i]!;
      if (labelled && !canRun(this.cohort.requiresOf(step.stepId), labels)) continue;
      if (step.failedOn.includes(peerId) && this.ctx.anotherPeerCouldTake(this.cohort, step, peerId)) continue;
      this.ready.splice(i, 1);
      return { step, backup: false };
    }
    if (!this.ctx.backupCapable(peerId)) return null;
    for (let i = 0; i < this.stragglers.length; i++) {
      const step = this.stragglers[i]!;
      if (this.cohort.live(step.stepId)[0]?.peerId === peerId || step.failedOn.includes(peerId)) continue;
      if (labelled && !canRun(this.cohort.requiresOf(step.stepId), labels)) continue;
      this.stragglers.splice(i, 1);
      return { step, backup: true };
    }
    return null;
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
