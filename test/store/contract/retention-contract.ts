import { describe, expect, it } from 'vitest';
import type { Write } from '../../../server/core/records.js';
import { peerRecord, seedCohortWrites } from './fixtures.js';
import type { StoreFactory } from './store-contract.js';
import { useStore } from './use-store.js';

const hour = 3600_000;

/**
 * Five resolved cohorts (resolved at 1h, 2h, 3h, 4h, 5h; each: 2 steps, 2
 * leases, 2 success rows, 1 peer, 4 events) and one open cohort created at 0;
 * a live memo and a duration.
 */
function history(): Write[] {
  const writes: Write[] = [];
  for (let i = 1; i <= 5; i++) writes.push(...seedCohortWrites({ id: `old${i}`, createdAtMs: i * hour - 1000, resolvedAtMs: i * hour }));
  writes.push(...seedCohortWrites({ id: 'open', status: 'open', createdAtMs: 0 }));
  writes.push({ table: 'memo', row: { memoKey: 'm1', stepId: 'a', cohortId: 'old1', peerId: 'p1', durationMs: 5, createdAtMs: hour, expiresAtMs: 100 * hour } });
  writes.push({ table: 'duration', row: { durationKey: 'k1', avgMs: 5, samples: 3 } });
  return writes;
}

// No success rows: step_successes is no longer written (rows from before are pruned with their cohort, test/store/sqlite-store.test.ts).
const perCohort = { cohorts: 1, steps: 2, successes: 0, leases: 2, peers: 1, events: 4 };
const rowsPerCohort = Object.values(perCohort).reduce((a, b) => a + b, 0);
const times = (n: number) => Object.fromEntries(Object.entries(perCohort).map(([k, v]) => [k, v * n]));

export function retentionContract(factory: StoreFactory): void {
  describe('retention', () => {
    const current = useStore(factory);

    it('prunes cohorts resolved before the cutoff in bounded batches, oldest first, saying whether more remain', async () => {
      const { store } = current();
      await store.scheduler.apply(history());
      const first = await store.retention.pruneHistory(4 * hour, 2);
      expect(first).toEqual({ removed: times(2), removedRows: rowsPerCohort * 2, more: true });
      expect(await store.readModel.cohortDetail('old1')).toBeNull();
      expect(await store.readModel.cohortDetail('old2')).toBeNull();
      expect(await store.readModel.cohortDetail('old3')).not.toBeNull();
      const second = await store.retention.pruneHistory(4 * hour, 2);
      expect(second).toEqual({ removed: times(1), removedRows: rowsPerCohort, more: false });
      const third = await store.retention.pruneHistory(4 * hour, 2);
      expect(third).toEqual({ removed: times(0), removedRows: 0, more: false });
      // Resolved exactly at the cutoff is not before it.
      expect((await store.readModel.listCohorts({ limit: 100 })).map((c) => c.cohortId)).toEqual(['old5', 'old4', 'open']);
    });

    it('keeps open cohorts, live memos and durations, and leaves the rest loadable', async () => {
      const { store } = current();
      await store.scheduler.apply(history());
      await store.retention.pruneHistory(1000 * hour, 100);
      expect((await store.readModel.listCohorts({ limit: 100 })).map((c) => c.cohortId)).toEqual(['open']);
      const loaded = await store.scheduler.load(6 * hour, 1000 * hour);
      expect(loaded.cohorts.map((c) => c.cohortId)).toEqual(['open']);
      expect(loaded.steps).toHaveLength(2);
      expect(loaded.leases.map((l) => l.leaseId)).toEqual(['open-l1']);
      expect(loaded.memos.map((m) => m.memoKey)).toEqual(['m1']);
      expect(loaded.durations).toEqual([{ durationKey: 'k1', avgMs: 5, samples: 3 }]);
      expect(await store.readModel.stats()).toMatchObject({ cohorts: { open: 1, complete: 0, cancelled: 0 }, leases: { granted: 1 } });
      // A pruned step may succeed again in a new cohort: its success row went with it.
      await store.scheduler.apply(seedCohortWrites({ id: 'old1', createdAtMs: 7 * hour }));
      expect((await store.readModel.cohortDetail('old1'))!.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
    });

    it('keeps a resolved cohort while a member is still connected or in grace (the authority still holds it)', async () => {
      const { store } = current();
      await store.scheduler.apply(history());
      await store.scheduler.apply([
        { table: 'peer', row: peerRecord('old1', 'p-stuck', hour, { status: 'connected' }) },
        { table: 'peer', row: peerRecord('old2', 'p-grace', 2 * hour, { status: 'disconnected', graceEndsAtMs: 3 * hour }) },
      ]);
      const result = await store.retention.pruneHistory(1000 * hour, 100);
      expect(result).toEqual({ removed: times(3), removedRows: rowsPerCohort * 3, more: false });
      expect((await store.readModel.listCohorts({ limit: 100 })).map((c) => c.cohortId).sort()).toEqual(['old1', 'old2', 'open']);
    });

    it('refuses a cutoff that is not a time and a batch size outside 1..10000', async () => {
      const { store } = current();
      await expect(store.retention.pruneHistory(Number.NaN, 10)).rejects.toThrow(/resolvedBeforeMs/);
      await expect(store.retention.pruneHistory(hour, 0)).rejects.toThrow(/maxCohorts/);
      await expect(store.retention.pruneHistory(hour, 10_001)).rejects.toThrow(/maxCohorts/);
    });
  });
}
