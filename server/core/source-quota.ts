import type { Cohort } from './cohort.js';
import type { Refusal } from './effects.js';
import type { Journal } from './journal.js';
import type { Registration } from './records.js';
import type { SchedulerState } from './scheduler-state.js';

/**
 * Quotas per source (repo + cache id): at most `maxOpenCohortsPerSource` open
 * cohorts and `maxStepsPerSource` steps in them, so one client cannot fill the
 * authority's memory with cohorts of its own making (issue #12). Joining an
 * existing cohort is never refused; only creating one past a quota is
 * (`QUOTA_EXCEEDED`, and the peer fails open).
 *
 * The index `state.openBySource` holds every open cohort under its source
 * key (added when a cohort is created, restored or reopened open); cohorts
 * that have since completed or been cancelled are dropped from it when their
 * source is next counted, or when they are evicted. So a hello's check costs
 * the source's own open cohorts, never a scan of the authority's history.
 */

/** The source a quota counts against: repo + cache id. */
export function quotaKey(reg: Pick<Registration, 'repo' | 'cacheId'>): string {
  return JSON.stringify([reg.repo, reg.cacheId]);
}

/** Adds an open cohort to its source's index (a no-op when it is there or not open). */
export function trackOpen(state: SchedulerState, j: Journal, cohort: Cohort): void {
  if (cohort.record.status !== 'open') return;
  const key = cohort.quotaKey;
  let set = state.openBySource.get(key);
  if (set === undefined) {
    set = new Set<Cohort>();
    j.mapSet(state.openBySource, key, set);
  }
  j.setAdd(set, cohort);
}

/** Removes a cohort from its source's index (it is evicted). */
export function untrack(state: SchedulerState, j: Journal, cohort: Cohort): void {
  const key = cohort.quotaKey;
  const set = state.openBySource.get(key);
  if (set === undefined || !set.has(cohort)) return;
  j.setDelete(set, cohort);
  if (set.size === 0) j.mapDelete(state.openBySource, key);
}

/** Why a new cohort of `steps` steps for this source would pass a quota, or null when it fits. */
export function quotaRefusal(state: SchedulerState, j: Journal, reg: Pick<Registration, 'repo' | 'cacheId'>, steps: number): Refusal | null {
  const key = quotaKey(reg);
  const set = state.openBySource.get(key);
  let cohorts = 0;
  let held = 0;
  if (set !== undefined) {
    for (const cohort of [...set]) {
      if (cohort.record.status !== 'open') {
        j.setDelete(set, cohort);
        continue;
      }
      cohorts++;
      held += cohort.ordered.length;
    }
    if (set.size === 0) j.mapDelete(state.openBySource, key);
  }
  const { maxOpenCohortsPerSource, maxStepsPerSource } = state.config;
  const source = { kind: 'quota-exceeded', repo: reg.repo, cacheId: reg.cacheId } as const;
  if (cohorts + 1 > maxOpenCohortsPerSource) return { ...source, quota: 'cohorts', held: cohorts, requested: 1, limit: maxOpenCohortsPerSource };
  if (held + steps > maxStepsPerSource) return { ...source, quota: 'steps', held, requested: steps, limit: maxStepsPerSource };
  return null;
}
