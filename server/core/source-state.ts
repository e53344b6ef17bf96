import type { Registration, RepoRef } from './records.js';

/**
 * Keys derived from a peer's source state. Plain strings (JSON tuples) so the
 * core needs no hashing; the store may hash them if it wants shorter keys.
 */

/** Whether the registration names its group with a cohort key (`--cohort-key`) instead of a source state. */
export function isCohortKeyed(reg: Pick<Registration, 'cohortKey'>): boolean {
  return reg.cohortKey !== undefined && reg.cohortKey !== null;
}

/** Patchsets as a set: sorted, without repeats. */
export function patchsetSet(patchsets: readonly string[]): string[] {
  return [...new Set(patchsets)].sort();
}

/** The fields of a registration (or cohort) that must be equal to share a cohort; repos are matched separately. */
export type MatchFields = Pick<Registration, 'cacheId' | 'pipelineType' | 'cohortKey'>;

/** Peers can share a cohort only if this is equal (DESIGN §5), cohort key included, and their repos match ({@link reposOf}). */
export function matchKey(reg: MatchFields, digest: string): string {
  return JSON.stringify([reg.cacheId, digest, reg.pipelineType, reg.cohortKey ?? null]);
}

/** The repos (with base refs) of a source state: `repos` when given, else the single `repo` at `baseRef`. */
export function reposOf(reg: Pick<Registration, 'repo' | 'baseRef' | 'repos'>): readonly RepoRef[] {
  return reg.repos && reg.repos.length > 0 ? reg.repos : [{ repo: reg.repo, baseRef: reg.baseRef }];
}

/**
 * The exact source state: base sha (when known) and the patchset set. With a
 * cohort key the key stands in for it: keyed peers share whatever their sources.
 */
export function sourceKey(baseSha: string | null, patchsets: readonly string[], cohortKey: string | null = null): string {
  return cohortKey === null ? JSON.stringify([baseSha, patchsetSet(patchsets)]) : JSON.stringify({ cohortKey });
}

/** {@link sourceKey} of a registration or cohort record. */
export function sourceKeyOf(s: Pick<Registration, 'baseSha' | 'patchsets' | 'cohortKey'>): string {
  return sourceKey(s.baseSha, s.patchsets, s.cohortKey ?? null);
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
