import type { Registration } from './records.js';

/**
 * Keys derived from a peer's source state. Plain strings (JSON tuples) so the
 * core needs no hashing; the store may hash them if it wants shorter keys.
 */

/** Patchsets as a set: sorted, without repeats. */
export function patchsetSet(patchsets: readonly string[]): string[] {
  return [...new Set(patchsets)].sort();
}

/** The fields of a registration (or cohort) that must be equal to share a cohort. */
export type MatchFields = Pick<Registration, 'repo' | 'baseRef' | 'cacheId' | 'pipelineType'>;

/** Peers can share a cohort only if this is equal (DESIGN §5). */
export function matchKey(reg: MatchFields, digest: string): string {
  return JSON.stringify([reg.repo, reg.baseRef, reg.cacheId, digest, reg.pipelineType]);
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
