import type { Cohort } from './cohort.js';
import type { Journal } from './journal.js';
import type { Registration } from './records.js';
import { matchKey, sourceKey } from './source-state.js';

/**
 * Cohort matching (DESIGN §5). Candidates share cache id, schema digest and
 * pipeline type, and have each of the joiner's repos at the same base ref
 * (for the usual single-repo peer: the same repo and base ref). Then:
 * - independent: the identical source state (base sha + patchset set);
 * - dependent: the most patchsets in common (at least one), ties to the larger
 *   cohort, then the older one;
 * - isolated: never matched.
 * Open cohorts are preferred; a resolved cohort still in retention is the
 * fallback, so a late peer of a finished cohort is told `complete` at once
 * (for a dependent peer with changes the cohort did not have, its own
 * universe build then builds them; issue 5 fixes the original's hang this way).
 */
export class CohortMatcher {
  private readonly byKey: ReadonlyMap<string, ReadonlySet<Cohort>> = new Map();

  add(journal: Journal, cohort: Cohort): void {
    if (cohort.record.isolated) return;
    let set = this.byKey.get(cohort.matchKey);
    if (!set) journal.mapSet(this.byKey, cohort.matchKey, (set = new Set()));
    journal.setAdd(set, cohort);
  }

  remove(journal: Journal, cohort: Cohort): void {
    const set = this.byKey.get(cohort.matchKey);
    if (!set) return;
    journal.setDelete(set, cohort);
    if (set.size === 0) journal.mapDelete(this.byKey, cohort.matchKey);
  }

  /** Whether the cohort is indexed (for the invariant checks). */
  has(cohort: Cohort): boolean {
    return this.byKey.get(cohort.matchKey)?.has(cohort) ?? false;
  }

  /** Cohorts with the same repos and cache id but another digest for the same schema id. */
  digestSiblings(reg: Registration, schemaId: string, digest: string): string[] {
    const digests = new Set<string>();
    for (const set of this.byKey.values()) {
      for (const c of set) {
        const r = c.record;
        if (r.cacheId === reg.cacheId && r.schema.id === schemaId && r.digest !== digest && c.reposCover(reg)) {
          digests.add(r.digest);
        }
      }
    }
    return [...digests];
  }

  find(reg: Registration, digest: string): Cohort | null {
    if (reg.isolated) return null;
    const candidates = [...(this.byKey.get(matchKey(reg, digest)) ?? [])].filter((c) => c.joinable && c.reposCover(reg));
    const open = candidates.filter((c) => c.record.status === 'open');
    const resolved = candidates.filter((c) => c.record.status !== 'open');
    return this.best(reg, open) ?? this.best(reg, resolved);
  }

  private best(reg: Registration, candidates: Cohort[]): Cohort | null {
    if (reg.pipelineType === 'independent') {
      const wanted = sourceKey(reg.baseSha, reg.patchsets);
      let found: Cohort | null = null;
      for (const c of candidates) {
        if (c.sourceKey === wanted && (!found || c.record.createdAtMs > found.record.createdAtMs)) found = c;
      }
      return found;
    }
    let best: Cohort | null = null;
    let bestOverlap = 0;
    for (const c of candidates) {
      let overlap = 0;
      for (const p of new Set(reg.patchsets)) if (c.patchsets.has(p)) overlap++;
      if (overlap === 0) continue;
      const better =
        !best ||
        overlap > bestOverlap ||
        (overlap === bestOverlap &&
          (c.members.size > best.members.size ||
            (c.members.size === best.members.size && c.record.createdAtMs < best.record.createdAtMs)));
      if (better) {
        best = c;
        bestOverlap = overlap;
      }
    }
    return best;
  }
}
