import { describe, expect, it } from 'vitest';
import { cacheEvidenceView } from '../../../server/core/read-model.js';
import { seedCohortWrites } from './fixtures.js';
import type { StoreFactory } from './store-contract.js';
import { useStore } from './use-store.js';

const hour = 3600_000;
const evidence = (peerId: string, reportedAtMs: number, missedSteps: string[] = []) => ({ peerId, reportedAtMs, tool: 'bazel' as const, hits: 22, misses: missedSteps.length, missedSteps, source: 'record' as const });

/** Cache evidence (--build-tool reports): stored per peer and cohort, kept across a restart, pruned with its cohort. */
export function cacheEvidenceContract(factory: StoreFactory): void {
  describe('cache evidence', () => {
    const current = useStore(factory);

    it("stores each peer's latest report for a cohort and lists them oldest report first", async () => {
      const { store } = current();
      await store.scheduler.apply([...seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000, peers: ['p1', 'p2'] }), ...seedCohortWrites({ id: 'c2', createdAtMs: 1000 })]);
      expect(await store.readModel.cacheEvidence('c1')).toEqual([]);
      await store.scheduler.recordCacheEvidence('c1', evidence('p2', 5000, ['a']));
      await store.scheduler.recordCacheEvidence('c1', evidence('p1', 6000));
      await store.scheduler.recordCacheEvidence('c2', { ...evidence('p1', 6000), tool: 'turbo', source: 'output' });
      const listed = await store.readModel.cacheEvidence('c1');
      for (const e of listed) cacheEvidenceView.parse(e);
      expect(listed).toEqual([evidence('p2', 5000, ['a']), evidence('p1', 6000)]);
      // A later report of the same peer replaces its earlier one.
      await store.scheduler.recordCacheEvidence('c1', evidence('p2', 7000));
      expect(await store.readModel.cacheEvidence('c1')).toEqual([evidence('p1', 6000), evidence('p2', 7000)]);
      expect(await store.readModel.cacheEvidence('c2')).toEqual([{ ...evidence('p1', 6000), tool: 'turbo', source: 'output' }]);
      expect(await store.readModel.cacheEvidence('c_missing')).toEqual([]);
    });

    it('refuses evidence for a cohort that is not stored, and a malformed one', async () => {
      const { store } = current();
      await expect(Promise.resolve().then(() => store.scheduler.recordCacheEvidence('c_missing', evidence('p1', 1)))).rejects.toThrow();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
      await expect(Promise.resolve().then(() => store.scheduler.recordCacheEvidence('c1', { ...evidence('p1', 1), hits: -1 }))).rejects.toThrow(/hits/);
      expect(await store.readModel.cacheEvidence('c1')).toEqual([]);
    });

    it('survives a restart (another store instance on the same database)', async () => {
      const { store, openAnother } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', createdAtMs: 1000 }));
      await store.scheduler.recordCacheEvidence('c1', evidence('p1', 2000, ['b']));
      await store.close();
      const reopened = await openAnother();
      expect(await reopened.readModel.cacheEvidence('c1')).toEqual([evidence('p1', 2000, ['b'])]);
    });

    it('goes with its cohort when history is pruned, and stays with a cohort that is kept', async () => {
      const { store } = current();
      await store.scheduler.apply([...seedCohortWrites({ id: 'old', createdAtMs: 1000, resolvedAtMs: hour }), ...seedCohortWrites({ id: 'new', createdAtMs: 1000, resolvedAtMs: 3 * hour })]);
      await store.scheduler.recordCacheEvidence('old', evidence('p1', 2000));
      await store.scheduler.recordCacheEvidence('new', evidence('p1', 2000));
      const pruned = await store.retention.pruneHistory(2 * hour, 10);
      expect(pruned.removed.cohorts).toBe(1);
      expect(await store.readModel.cacheEvidence('old')).toEqual([]);
      expect(await store.readModel.cacheEvidence('new')).toEqual([evidence('p1', 2000)]);
    });
  });
}
