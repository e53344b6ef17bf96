import type { Cohort } from './cohort.js';
import type { Journal } from './journal.js';
import type { Registration } from './records.js';
import { isCohortKeyed, matchKey, sourceKeyOf } from './source-state.js';

/**
 * Why a peer that got a cohort of its own could have had company: an open
 * cohort that differs from it in exactly one way a user can fix. Typed here;
 * worded where the welcome is built.
 */
export type CompanyDifference =
  | { readonly kind: 'other-digest'; readonly schemaId: string; readonly digest: string; readonly yours: string }
  | { readonly kind: 'other-cache'; readonly cacheId: string; readonly yours: string }
  | { readonly kind: 'other-pipeline-type'; readonly pipelineType: Registration['pipelineType']; readonly yours: Registration['pipelineType'] }
  /** Same repo, schema digest, cache and pipeline type, same patchsets, another base ref. */
  | { readonly kind: 'other-base-ref'; readonly baseRef: string; readonly yours: string }
  /** Same repo, base ref, schema digest, cache, pipeline type and patchsets, another (or no) base sha. */
  | { readonly kind: 'other-base-sha'; readonly baseSha: string | null; readonly yours: string | null };

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
 *
 * Cost per lookup does not depend on history (DESIGN §11): independent
 * cohorts are indexed by match key and exact source state, dependent ones by
 * match key and each patchset, each bucket split into open and resolved
 * cohorts; the company and digest-sibling lookups have indexes of their own.
 * A hello visits the cohorts of its own source state (or sharing one of its
 * patchsets), never the rest of the retained history. Index changes are
 * undone with the input's journal.
 */
export class CohortMatcher {
  /** Independent (and cohort-keyed) cohorts by match key and exact source state. */
  private readonly bySource = new Map<string, Bucket>();
  /** Dependent cohorts by match key and each of their patchsets. */
  private readonly byPatchset = new Map<string, Bucket>();
  /** Open cohorts by repo, schema id and exact source state, for `companyElsewhere`. */
  private readonly companyIndex = new Map<string, Set<Cohort>>();
  /** Open independent cohorts by match key, repo and patchsets, for the base-ref and base-sha reasons of `companyElsewhere`. */
  private readonly baseIndex = new Map<string, Set<Cohort>>();
  /** Cohorts by cache id, schema id and repo, then digest, for `digestSiblings`. */
  private readonly digestIndex = new Map<string, Map<string, Set<Cohort>>>();
  /** Where each indexed cohort is, so it can be moved or removed without a scan. */
  private readonly placed = new Map<Cohort, Placement>();
  /**
   * Cohorts examined by lookups since construction (a diagnostic, never
   * rolled back): tests assert that one hello visits a bounded number of
   * cohorts however many are retained.
   */
  visited = 0;

  /**
   * Indexes a cohort (or re-indexes it after its status changed: open and
   * resolved cohorts sit in separate halves of each bucket, and only open ones
   * are in the company index). Isolated cohorts are never indexed.
   */
  add(journal: Journal, cohort: Cohort): void {
    if (cohort.record.isolated) return;
    this.remove(journal, cohort);
    const open = cohort.record.status === 'open';
    const placement: Placement = { open, buckets: [], company: null, digest: null, base: null };
    const r = cohort.record;
    if (r.pipelineType === 'dependent') {
      for (const p of cohort.patchsets) placement.buckets.push(this.bucketKeyed(this.byPatchset, patchsetKey(cohort.matchKey, p)));
    } else {
      placement.buckets.push(this.bucketKeyed(this.bySource, sourceBucketKey(cohort.matchKey, cohort.sourceKey)));
    }
    for (const bucket of placement.buckets) (open ? bucket.open : bucket.resolved).add(cohort);
    if (open) {
      const key = companyKey(r.repo, r.schema.id, cohort.sourceKey);
      let set = this.companyIndex.get(key);
      if (!set) this.companyIndex.set(key, (set = new Set()));
      set.add(cohort);
      placement.company = key;
      if (r.pipelineType === 'independent') {
        const bKey = baseKey(cohort.matchKey, r.repo, JSON.stringify([...r.patchsets].sort()));
        let bases = this.baseIndex.get(bKey);
        if (!bases) this.baseIndex.set(bKey, (bases = new Set()));
        bases.add(cohort);
        placement.base = bKey;
      }
    }
    const dKey = digestKey(r.cacheId, r.schema.id, r.repo);
    let byDigest = this.digestIndex.get(dKey);
    if (!byDigest) this.digestIndex.set(dKey, (byDigest = new Map()));
    let set = byDigest.get(r.digest);
    if (!set) byDigest.set(r.digest, (set = new Set()));
    set.add(cohort);
    placement.digest = dKey;
    this.placed.set(cohort, placement);
    journal.onUndo(() => this.unplace(cohort));
  }

  /** Indexes a dependent cohort under patchsets its members added since (a no-op for the ones it has). */
  addPatchsets(journal: Journal, cohort: Cohort): void {
    const placement = this.placed.get(cohort);
    if (!placement || cohort.record.pipelineType !== 'dependent') return;
    const open = placement.open;
    for (const p of cohort.patchsets) {
      const bucket = this.bucketKeyed(this.byPatchset, patchsetKey(cohort.matchKey, p));
      if (placement.buckets.includes(bucket)) continue;
      (open ? bucket.open : bucket.resolved).add(cohort);
      placement.buckets.push(bucket);
      journal.onUndo(() => {
        bucket.open.delete(cohort);
        bucket.resolved.delete(cohort);
        placement.buckets.splice(placement.buckets.indexOf(bucket), 1);
      });
    }
  }

  remove(journal: Journal, cohort: Cohort): void {
    const placement = this.placed.get(cohort);
    if (!placement) return;
    this.unplace(cohort);
    journal.onUndo(() => this.place(cohort, placement));
  }

  private place(cohort: Cohort, placement: Placement): void {
    for (const bucket of placement.buckets) (placement.open ? bucket.open : bucket.resolved).add(cohort);
    if (placement.company !== null) {
      let set = this.companyIndex.get(placement.company);
      if (!set) this.companyIndex.set(placement.company, (set = new Set()));
      set.add(cohort);
    }
    if (placement.digest !== null) {
      let byDigest = this.digestIndex.get(placement.digest);
      if (!byDigest) this.digestIndex.set(placement.digest, (byDigest = new Map()));
      let set = byDigest.get(cohort.record.digest);
      if (!set) byDigest.set(cohort.record.digest, (set = new Set()));
      set.add(cohort);
    }
    if (placement.base !== null) {
      let bases = this.baseIndex.get(placement.base);
      if (!bases) this.baseIndex.set(placement.base, (bases = new Set()));
      bases.add(cohort);
    }
    this.placed.set(cohort, placement);
  }

  private unplace(cohort: Cohort): void {
    const placement = this.placed.get(cohort);
    if (!placement) return;
    this.placed.delete(cohort);
    for (const bucket of placement.buckets) {
      bucket.open.delete(cohort);
      bucket.resolved.delete(cohort);
      if (bucket.open.size === 0 && bucket.resolved.size === 0) {
        const map = cohort.record.pipelineType === 'dependent' ? this.byPatchset : this.bySource;
        if (map.get(bucket.key) === bucket) map.delete(bucket.key);
      }
    }
    if (placement.company !== null) {
      const set = this.companyIndex.get(placement.company);
      set?.delete(cohort);
      if (set?.size === 0) this.companyIndex.delete(placement.company);
    }
    if (placement.base !== null) {
      const bases = this.baseIndex.get(placement.base);
      bases?.delete(cohort);
      if (bases?.size === 0) this.baseIndex.delete(placement.base);
    }
    if (placement.digest !== null) {
      const byDigest = this.digestIndex.get(placement.digest);
      const set = byDigest?.get(cohort.record.digest);
      set?.delete(cohort);
      if (set?.size === 0) byDigest!.delete(cohort.record.digest);
      if (byDigest?.size === 0) this.digestIndex.delete(placement.digest);
    }
  }

  private bucketKeyed(map: Map<string, Bucket>, key: string): Bucket {
    let bucket = map.get(key);
    if (!bucket) map.set(key, (bucket = { key, open: new Set(), resolved: new Set() }));
    return bucket;
  }

  /**
   * Open cohorts of the same repo and schema id that this registration would
   * have joined but for one difference: another schema digest (same cache,
   * same source state), another cache id, or another pipeline type (same
   * digest and source state). Oldest first.
   */
  companyElsewhere(reg: Registration, schemaId: string, digest: string): CompanyElsewhere[] {
    if (reg.isolated) return [];
    const found: CompanyElsewhere[] = [];
    for (const c of this.companyIndex.get(companyKey(reg.repo, schemaId, sourceKeyOf(reg))) ?? []) {
      this.visited++;
      const r = c.record;
      if (r.status !== 'open' || !c.joinable || !c.reposCover(reg)) continue;
      const sameDigest = r.digest === digest;
      const sameCache = r.cacheId === reg.cacheId;
      const sameType = r.pipelineType === reg.pipelineType;
      if (!sameDigest && sameCache && sameType) found.push({ kind: 'other-digest', cohort: c, schemaId, digest: r.digest, yours: digest });
      else if (sameDigest && !sameCache && sameType) found.push({ kind: 'other-cache', cohort: c, cacheId: r.cacheId, yours: reg.cacheId });
      else if (sameDigest && sameCache && !sameType) found.push({ kind: 'other-pipeline-type', cohort: c, pipelineType: r.pipelineType, yours: reg.pipelineType });
    }
    // Everything else equal (repo, digest, cache, pipeline type, patchsets) but the base: another base ref, or another (or no) sha.
    if (reg.pipelineType === 'independent' && !isCohortKeyed(reg) && !(reg.repos && reg.repos.length > 0)) {
      // Only cohorts with the joiner's patchsets are in this bucket (the key has them): no look at the others.
      const patchsets = JSON.stringify([...new Set(reg.patchsets)].sort());
      for (const c of this.baseIndex.get(baseKey(matchKey(reg, digest), reg.repo, patchsets)) ?? []) {
        this.visited++;
        const r = c.record;
        if (r.status !== 'open' || !c.joinable) continue;
        if (r.baseRef !== reg.baseRef) found.push({ kind: 'other-base-ref', cohort: c, baseRef: r.baseRef, yours: reg.baseRef });
        else if (r.baseSha !== reg.baseSha) found.push({ kind: 'other-base-sha', cohort: c, baseSha: r.baseSha, yours: reg.baseSha });
      }
    }
    return found.sort((a, b) => a.cohort.record.createdAtMs - b.cohort.record.createdAtMs);
  }

  /** Whether the cohort is indexed (for the invariant checks). */
  has(cohort: Cohort): boolean {
    return this.placed.has(cohort);
  }

  /**
   * Other digests in use for the same schema id, cache id and repo (by
   * cohorts whose repos cover the joiner's). Costs the number of digests, plus
   * the cohorts of a digest passed over because their base ref differs.
   */
  digestSiblings(reg: Registration, schemaId: string, digest: string): string[] {
    const digests: string[] = [];
    for (const [other, cohorts] of this.digestIndex.get(digestKey(reg.cacheId, schemaId, reg.repo)) ?? []) {
      if (other === digest) continue;
      for (const c of cohorts) {
        this.visited++;
        if (c.reposCover(reg)) {
          digests.push(other);
          break;
        }
      }
    }
    return digests;
  }

  /** `rejoining`: the peer presented a resume token (it was registered before), so a finished cohort may be its own. */
  find(reg: Registration, digest: string, rejoining = false): Cohort | null {
    if (reg.isolated) return null;
    const key = matchKey(reg, digest);
    const buckets: Bucket[] = [];
    if (reg.pipelineType === 'dependent') {
      for (const p of new Set(reg.patchsets)) {
        const bucket = this.byPatchset.get(patchsetKey(key, p));
        if (bucket) buckets.push(bucket);
      }
    } else {
      const bucket = this.bySource.get(sourceBucketKey(key, sourceKeyOf(reg)));
      if (bucket) buckets.push(bucket);
    }
    const openOnly = reg.pipelineType === 'independent' && reg.baseSha === null && !isCohortKeyed(reg) && !rejoining;
    return this.best(reg, this.candidates(reg, buckets, 'open')) ?? (openOnly ? null : this.best(reg, this.candidates(reg, buckets, 'resolved')));
  }

  private candidates(reg: Registration, buckets: readonly Bucket[], half: 'open' | 'resolved'): Set<Cohort> {
    const found = new Set<Cohort>();
    for (const bucket of buckets) {
      for (const c of bucket[half]) {
        this.visited++;
        if (c.joinable && c.reposCover(reg)) found.add(c);
      }
    }
    return found;
  }

  private best(reg: Registration, candidates: Iterable<Cohort>): Cohort | null {
    if (reg.pipelineType === 'independent') {
      const wanted = sourceKeyOf(reg);
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

/** Cohorts sharing one index key: the open ones (tried first) and the resolved ones still retained. */
interface Bucket {
  readonly key: string;
  readonly open: Set<Cohort>;
  readonly resolved: Set<Cohort>;
}

/** The buckets and index keys a cohort is filed under. */
interface Placement {
  /** Filed as open (else as resolved). */
  readonly open: boolean;
  readonly buckets: Bucket[];
  company: string | null;
  digest: string | null;
  base: string | null;
}

/** An open independent cohort's key for the base-ref and base-sha reasons: match key, repo and its patchsets (sorted, as JSON). */
function baseKey(matchKey: string, repo: string, patchsetsJson: string): string {
  return JSON.stringify([matchKey, repo, patchsetsJson]);
}

function sourceBucketKey(matchKey: string, sourceKey: string): string {
  return JSON.stringify([matchKey, sourceKey]);
}

function patchsetKey(matchKey: string, patchset: string): string {
  return JSON.stringify([matchKey, patchset]);
}

function companyKey(repo: string, schemaId: string, sourceKey: string): string {
  return JSON.stringify([repo, schemaId, sourceKey]);
}

function digestKey(cacheId: string, schemaId: string, repo: string): string {
  return JSON.stringify([cacheId, schemaId, repo]);
}
