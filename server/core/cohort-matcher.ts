import type { Cohort } from './cohort.js';
import type { Journal } from './journal.js';
import type { Registration } from './records.js';
import { isCohortKeyed, matchKey, sourceKey } from './source-state.js';

/**
 * Why a peer that got a cohort of its own could have had company: an open
 * cohort that differs from it in exactly one way a user can fix. Typed here;
 * worded where the welcome is built.
 */
export type CompanyDifference =
  | { readonly kind: 'other-digest'; readonly schemaId: string; readonly digest: string; readonly yours: string }
  | { readonly kind: 'other-cache'; readonly cacheId: string; readonly yours: string }
  | { readonly kind: 'other-pipeline-type'; readonly pipelineType: Registration['pipelineType']; readonly yours: Registration['pipelineType'] };

export type CompanyElsewhere = CompanyDifference & { readonly cohort: Cohort };

/** In the `joined` effect: a difference and how many active peers are on the other side of it. */
export type AloneReason = CompanyDifference & { readonly peers: number };

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
 * Except: an independent peer without a base sha (and without a cohort key)
 * never joins a finished cohort unless it is rejoining (it presented a resume
 * token): nothing says the finished run built its sources (an earlier push to
 * the same branch looks the same), so it would build nothing and run its
 * universe against a cold cache.
 */
export class CohortMatcher {
  private readonly byKey: ReadonlyMap<string, ReadonlySet<Cohort>> = new Map();
  /** The same cohorts by repo and schema id, for `companyElsewhere` (cost per hello independent of history). */
  private readonly byRepoSchema: ReadonlyMap<string, ReadonlySet<Cohort>> = new Map();

  add(journal: Journal, cohort: Cohort): void {
    if (cohort.record.isolated) return;
    let set = this.byKey.get(cohort.matchKey);
    if (!set) journal.mapSet(this.byKey, cohort.matchKey, (set = new Set()));
    journal.setAdd(set, cohort);
    const key = repoSchemaKey(cohort.record.repo, cohort.record.schema.id);
    let bySchema = this.byRepoSchema.get(key);
    if (!bySchema) journal.mapSet(this.byRepoSchema, key, (bySchema = new Set()));
    journal.setAdd(bySchema, cohort);
  }

  remove(journal: Journal, cohort: Cohort): void {
    const key = repoSchemaKey(cohort.record.repo, cohort.record.schema.id);
    const bySchema = this.byRepoSchema.get(key);
    if (bySchema) {
      journal.setDelete(bySchema, cohort);
      if (bySchema.size === 0) journal.mapDelete(this.byRepoSchema, key);
    }
    const set = this.byKey.get(cohort.matchKey);
    if (!set) return;
    journal.setDelete(set, cohort);
    if (set.size === 0) journal.mapDelete(this.byKey, cohort.matchKey);
  }

  /**
   * Open cohorts of the same repo and schema id that this registration would
   * have joined but for one difference: another schema digest (same cache,
   * same source state), another cache id, or another pipeline type (same
   * digest and source state). Oldest first.
   */
  companyElsewhere(reg: Registration, schemaId: string, digest: string): CompanyElsewhere[] {
    if (reg.isolated) return [];
    const wanted = sourceKey(reg.baseSha, reg.patchsets);
    const found: CompanyElsewhere[] = [];
    for (const c of this.byRepoSchema.get(repoSchemaKey(reg.repo, schemaId)) ?? []) {
      const r = c.record;
      if (r.status !== 'open' || !c.joinable || !c.reposCover(reg) || c.sourceKey !== wanted) continue;
      const sameDigest = r.digest === digest;
      const sameCache = r.cacheId === reg.cacheId;
      const sameType = r.pipelineType === reg.pipelineType;
      if (!sameDigest && sameCache && sameType) found.push({ kind: 'other-digest', cohort: c, schemaId, digest: r.digest, yours: digest });
      else if (sameDigest && !sameCache && sameType) found.push({ kind: 'other-cache', cohort: c, cacheId: r.cacheId, yours: reg.cacheId });
      else if (sameDigest && sameCache && !sameType) found.push({ kind: 'other-pipeline-type', cohort: c, pipelineType: r.pipelineType, yours: reg.pipelineType });
    }
    return found.sort((a, b) => a.cohort.record.createdAtMs - b.cohort.record.createdAtMs);
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

  /** `rejoining`: the peer presented a resume token (it was registered before), so a finished cohort may be its own. */
  find(reg: Registration, digest: string, rejoining = false): Cohort | null {
    if (reg.isolated) return null;
    const candidates = [...(this.byKey.get(matchKey(reg, digest)) ?? [])].filter((c) => c.joinable && c.reposCover(reg));
    const open = candidates.filter((c) => c.record.status === 'open');
    const resolved = candidates.filter((c) => c.record.status !== 'open');
    const openOnly = reg.pipelineType === 'independent' && reg.baseSha === null && !isCohortKeyed(reg) && !rejoining;
    return this.best(reg, open) ?? (openOnly ? null : this.best(reg, resolved));
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

function repoSchemaKey(repo: string, schemaId: string): string {
  return JSON.stringify([repo, schemaId]);
}
