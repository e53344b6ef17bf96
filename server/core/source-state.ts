import type { Registration, RepoRef } from './records.js';

/**
 * Keys derived from a peer's source state. Plain strings (JSON tuples) so the
 * core needs no hashing; the store may hash them if it wants shorter keys.
 */

/**
 * How a cohort key (`--cohort-key`) shows as the base ref of a registration;
 * git refs cannot contain `:`, so no branch looks like one.
 */
export const cohortKeyRefPrefix = 'cohort-key:';

/** Whether the registration names its group with a cohort key instead of a source state. */
export function isCohortKeyed(reg: Pick<Registration, 'baseRef'>): boolean {
  return reg.baseRef.startsWith(cohortKeyRefPrefix);
}

/** Patchsets as a set: sorted, without repeats. */
export function patchsetSet(patchsets: readonly string[]): string[] {
  return [...new Set(patchsets)].sort();
}

/** The fields of a registration (or cohort) that must be equal to share a cohort; repos are matched separately. */
export type MatchFields = Pick<Registration, 'cacheId' | 'pipelineType'>;

/** Peers can share a cohort only if this is equal (DESIGN §5) and their repos match ({@link reposOf}). */
export function matchKey(reg: MatchFields, digest: string): string {
  return JSON.stringify([reg.cacheId, digest, reg.pipelineType]);
}

/** The repos (with base refs) of a source state: `repos` when given, else the single `repo` at `baseRef`. */
export function reposOf(reg: Pick<Registration, 'repo' | 'baseRef' | 'repos'>): readonly RepoRef[] {
  return reg.repos && reg.repos.length > 0 ? reg.repos : [{ repo: reg.repo, baseRef: reg.baseRef }];
}

/** The exact source state: base sha (when known) and the patchset set. */
export function sourceKey(baseSha: string | null, patchsets: readonly string[]): string {
  return JSON.stringify([baseSha, patchsetSet(patchsets)]);
}

/**
 * The memo key of a step's result: exact source state, cache and target. Only
 * defined when the base sha is known; otherwise the state is not exact.
 */
export function memoKey(reg: Registration, target: string): string | null {
  if (reg.baseSha === null) return null;
  return JSON.stringify([reg.repo, reg.baseRef, reg.baseSha, patchsetSet(reg.patchsets), reg.cacheId, target]);
}

/** Recorded durations are kept per repo, schema and step. */
export function durationKey(repo: string, schemaId: string, stepId: string): string {
  return JSON.stringify([repo, schemaId, stepId]);
}
