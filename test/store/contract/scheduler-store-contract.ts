import { describe, expect, it } from 'vitest';
import type { Write } from '../../../server/core/records.js';
import { StoreConflictError, type Store, type StoreConflictKind } from '../../../server/core/store-port.js';
import { CoreHarness, snapshotFromWrites } from '../../helpers/core-harness.js';
import { dagSchema } from '../../helpers/schemas.js';
import { cohortRecord, eventWrite, leaseRecord, seedCohortWrites, stepRecord } from './fixtures.js';
import type { StoreFactory } from './store-contract.js';
import { useStore } from './use-store.js';

const hour = 3600_000;
/** The call as a promise, so a synchronous throw and an asynchronous rejection read the same. */
const settled = async (call: () => unknown): Promise<unknown> => call();
const byKey = <T>(rows: readonly T[], key: (r: T) => string): T[] => [...rows].sort((x, y) => key(x).localeCompare(key(y)));

/** A small but complete history from the real core: joins, leases, a success, a failure, a memo, a lost connection. */
function coreScenario(): CoreHarness {
  const h = new CoreHarness(dagSchema({ a: [], b: ['a'], c: [] }, { a: 10 }));
  h.hello('p1', { reg: { baseSha: 'd'.repeat(40) } });
  h.hello('p2', { reg: { baseSha: 'd'.repeat(40) } });
  // A cohort named by a key (`--cohort-key`), with its peer's real refs.
  h.hello('p3', { reg: { baseRef: 'release', baseSha: 'e'.repeat(40), cohortKey: 'run-7' } });
  h.finish('p1', h.lastAssign('p1')!.leaseId, 'a', true, { durationMs: 1234 });
  h.finish('p2', h.lastAssign('p2')!.leaseId, 'c', false, { exitCode: 2, logTail: 'oops' });
  h.disconnect('p1');
  return h;
}

async function timelineLength(store: Store, cohortId: string): Promise<number> {
  return (await store.readModel.cohortDetail(cohortId))!.timeline.length;
}

/** Expects the batch to fail as a conflict of `kind` and to leave the database exactly as it was. */
async function expectConflict(store: Store, cohortId: string, batch: Write[], kind: StoreConflictKind): Promise<StoreConflictError> {
  const before = await store.readModel.cohortDetail(cohortId);
  let caught: unknown = null;
  try {
    await store.scheduler.apply([eventWrite(cohortId, 1, 'before.conflict'), ...batch]);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(StoreConflictError);
  expect((caught as StoreConflictError).kind).toBe(kind);
  expect(await store.readModel.cohortDetail(cohortId)).toEqual(before);
  return caught as StoreConflictError;
}

export function schedulerStoreContract(factory: StoreFactory): void {
  describe('scheduler store', () => {
    const current = useStore(factory);

    it('loads back exactly what the core wrote', async () => {
      const h = coreScenario();
      const { store } = current();
      await store.scheduler.apply(h.writes);
      const loaded = await store.scheduler.load(h.clock.now(), 24 * hour);
      const expected = snapshotFromWrites(h.writes);
      expect(byKey(loaded.cohorts, (r) => r.cohortId)).toEqual(byKey(expected.cohorts, (r) => r.cohortId));
      expect(byKey(loaded.steps, (r) => r.stepId)).toEqual(byKey(expected.steps, (r) => r.stepId));
      expect(byKey(loaded.leases, (r) => r.leaseId)).toEqual(byKey(expected.leases, (r) => r.leaseId));
      expect(byKey(loaded.peers, (r) => r.peerId)).toEqual(byKey(expected.peers, (r) => r.peerId));
      expect(loaded.memos).toEqual(expected.memos);
      expect(loaded.durations).toEqual(expected.durations);
    });

    it('a restart (another instance on the same database) loads the same state', async () => {
      const h = coreScenario();
      const sut = current();
      await sut.store.scheduler.apply(h.writes);
      const before = await sut.store.scheduler.load(h.clock.now(), hour);
      await sut.store.close();
      const after = await (await sut.openAnother()).scheduler.load(h.clock.now(), hour);
      expect(after).toEqual(before);
    });

    it('loads open cohorts and those resolved at or after now - retention, and memos while now < expiresAtMs', async () => {
      const { store } = current();
      const resolvedAt = 10 * hour;
      await store.scheduler.apply([
        ...seedCohortWrites({ id: 'done', createdAtMs: resolvedAt - 1000, resolvedAtMs: resolvedAt }),
        ...seedCohortWrites({ id: 'open', status: 'open', createdAtMs: 1000 }),
        { table: 'memo', row: { memoKey: 'm1', stepId: 'a', cohortId: 'done', peerId: 'p1', durationMs: 5, createdAtMs: resolvedAt, expiresAtMs: resolvedAt + hour } },
        { table: 'duration', row: { durationKey: 'k1', avgMs: 5, samples: 1 } },
      ]);
      const ids = async (now: number) => (await store.scheduler.load(now, hour)).cohorts.map((c) => c.cohortId).sort();
      expect(await ids(resolvedAt + hour)).toEqual(['done', 'open']);
      expect(await ids(resolvedAt + hour + 1)).toEqual(['open']);
      const late = await store.scheduler.load(resolvedAt + hour + 1, hour);
      expect(late.steps.map((s) => s.cohortId)).toEqual(['open', 'open']);
      expect(late.leases.map((l) => l.leaseId)).toEqual(['open-l1']);
      expect(late.peers.map((p) => p.peerId)).toEqual(['p1']);
      expect((await store.scheduler.load(resolvedAt + hour - 1, hour)).memos.map((m) => m.memoKey)).toEqual(['m1']);
      expect((await store.scheduler.load(resolvedAt + hour, hour)).memos).toEqual([]);
      expect(late.durations).toEqual([{ durationKey: 'k1', avgMs: 5, samples: 1 }]);
    });

    it('makes a second success of the same step impossible, by its builder too, rolling back the whole batch', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', createdAtMs: 1000 }));
      const done = stepRecord('c1', 'a', { status: 'succeeded', attempts: 1, builtBy: 'p1', durationMs: 5, resolvedAtMs: 1015 });
      await expectConflict(store, 'c1', [{ table: 'step', row: { ...done, attempts: 2, resolvedAtMs: 5000 } }], 'step-succeeded');
      await expectConflict(store, 'c1', [{ table: 'step', row: { ...done, attempts: 2, durationMs: 7 } }], 'step-succeeded');
      await expectConflict(store, 'c1', [{ table: 'step', row: { ...done, fromMemo: true, builtBy: null } }], 'step-succeeded');
      // The same success written again (the core writes a succeeded step's row when its counters move) passes.
      await store.scheduler.apply([{ table: 'step', row: done }]);
    });

    it('rejects a row that breaks the table rules (an event of no stored cohort)', async () => {
      const { store } = current();
      await expect(settled(() => store.scheduler.apply([eventWrite('no-such-cohort', 1, 'x')]))).rejects.toThrow();
    });

    it('ends a lease once: a write changing an ended lease fails the batch; the same final state passes', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
      const live = leaseRecord('c1', 'a', 'c1-l1', 'p1', 1010);
      const ended = { ...live, endedAtMs: 2000, end: { kind: 'succeeded' as const } };
      await store.scheduler.apply([{ table: 'lease', row: ended }]);
      const err = await expectConflict(store, 'c1', [{ table: 'lease', row: { ...ended, endedAtMs: 3000, end: { kind: 'lost', why: 'bye' } } }], 'lease-ended');
      expect(err.message).toMatch(/leases\[c1-l1\].*already ended.*rolled back/);
      await expectConflict(store, 'c1', [{ table: 'lease', row: live }], 'lease-ended');
      await store.scheduler.apply([{ table: 'lease', row: ended }]);
      expect((await store.readModel.cohortDetail('c1'))!.leases[0]).toMatchObject({ leaseId: 'c1-l1', outcome: 'succeeded', end: { kind: 'succeeded' }, endedAtMs: 2000 });
    });

    it('keeps a succeeded step succeeded by its builder; counters may still move', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', createdAtMs: 1000 }));
      const done = stepRecord('c1', 'a', { status: 'succeeded', attempts: 1, builtBy: 'p1', durationMs: 5, resolvedAtMs: 1015 });
      await expectConflict(store, 'c1', [{ table: 'step', row: { ...done, status: 'pending', builtBy: null, resolvedAtMs: null } }], 'step-succeeded');
      await expectConflict(store, 'c1', [{ table: 'step', row: { ...done, builtBy: 'p2' } }], 'step-succeeded');
      await store.scheduler.apply([{ table: 'step', row: { ...done, attempts: 2, lostLeases: 1 } }]);
      expect((await store.readModel.cohortDetail('c1'))!.steps[0]).toMatchObject({ status: 'succeeded', builtBy: 'p1', attempts: 2, lostLeases: 1 });
    });

    it('keeps a cancelled cohort cancelled', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'cancelled', createdAtMs: 1000 }));
      const cancelled = cohortRecord({ id: 'c1', status: 'cancelled', createdAtMs: 1000 });
      await expectConflict(store, 'c1', [{ table: 'cohort', row: { ...cancelled, status: 'open', resolvedAtMs: null } }], 'cohort-cancelled');
      await store.scheduler.apply([{ table: 'cohort', row: { ...cancelled, lastActivityMs: 9000 } }]);
      expect((await store.readModel.cohortDetail('c1'))!.cohort).toMatchObject({ status: 'cancelled', lastActivityMs: 9000 });
    });

    it('writes an existing cohort without what was set at creation: the schema and source stay the created row\'s', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
      const created = cohortRecord({ id: 'c1', status: 'open', createdAtMs: 1000 });
      const other = cohortRecord({ id: 'c1', status: 'open', createdAtMs: 5, repo: 'elsewhere', steps: ['x'] });
      // Only status, patchsets, times, seconds saved and the outcome are written for an existing cohort.
      const later = { ...other, patchsets: ['refs/changes/1', 'refs/changes/2'], status: 'complete' as const, resolvedAtMs: 8000, lastActivityMs: 8000, secondsSaved: 3, outcome: { kind: 'succeeded' as const } };
      await store.scheduler.apply([{ table: 'cohort', row: later }]);
      const [loaded] = (await store.scheduler.load(8000, hour)).cohorts;
      expect(loaded).toEqual({ ...created, patchsets: later.patchsets, status: 'complete', resolvedAtMs: 8000, lastActivityMs: 8000, secondsSaved: 3, outcome: { kind: 'succeeded' } });
    });

    it('inserts a step or lease row that is not there yet, whichever batch created its cohort', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000, steps: ['a'] }));
      // Rows the store has not seen, in a later batch than the cohort's: a step, and a lease granted and ended at once.
      const late = stepRecord('c1', 'z', { status: 'succeeded', attempts: 1, builtBy: 'p1', durationMs: 3, resolvedAtMs: 2000 });
      const lease = leaseRecord('c1', 'z', 'c1-lz', 'p1', 1990, { endedAtMs: 2000, end: { kind: 'succeeded' } });
      await store.scheduler.apply([{ table: 'step', row: late }, { table: 'lease', row: lease }]);
      const loaded = await store.scheduler.load(2000, hour);
      expect(loaded.steps.find((s) => s.stepId === 'z')).toEqual(late);
      expect(loaded.leases.find((l) => l.leaseId === 'c1-lz')).toEqual(lease);
      // And once there, they are guarded as any other row.
      await expectConflict(store, 'c1', [{ table: 'step', row: { ...late, builtBy: 'p2' } }], 'step-succeeded');
      await expectConflict(store, 'c1', [{ table: 'lease', row: { ...lease, end: { kind: 'lost', why: 'bye' } } }], 'lease-ended');
    });

    it('writes a new cohort\'s untouched steps under the same guard as one by one: over a succeeded step, the batch is refused naming it', async () => {
      const { store } = current();
      const seed = { id: 'c1', status: 'open' as const, createdAtMs: 1000, steps: ['a', 'b', 'c', 'd'] };
      await store.scheduler.apply(seedCohortWrites(seed));
      expect((await store.scheduler.load(1000, hour)).steps.map((s) => [s.stepId, s.status])).toEqual([['a', 'leased'], ['b', 'pending'], ['c', 'pending'], ['d', 'pending']]);
      await store.scheduler.apply([{ table: 'step', row: stepRecord('c1', 'c', { status: 'succeeded', attempts: 1, builtBy: 'p1', durationMs: 5, resolvedAtMs: 1015 }) }]);
      // The cohort's creation written again: its pending steps b, c, d would reset c.
      const err = await expectConflict(store, 'c1', seedCohortWrites(seed), 'step-succeeded');
      expect(err.message).toMatch(/steps\[c1\/c\]/);
    });

    it('keeps the last of a batch\'s writes of one duration key (earlier ones in the batch are skipped)', async () => {
      const { store } = current();
      await store.scheduler.apply([{ table: 'duration', row: { durationKey: 'k1', avgMs: 5, samples: 1 } }]);
      await store.scheduler.apply([
        { table: 'duration', row: { durationKey: 'k1', avgMs: 6, samples: 2 } },
        { table: 'duration', row: { durationKey: 'k2', avgMs: 1, samples: 1 } },
        { table: 'duration', row: { durationKey: 'k1', avgMs: 7, samples: 3 } },
      ]);
      const durations = byKey((await store.scheduler.load(0, hour)).durations, (d) => d.durationKey);
      expect(durations).toEqual([{ durationKey: 'k1', avgMs: 7, samples: 3 }, { durationKey: 'k2', avgMs: 1, samples: 1 }]);
    });

    it('refuses a write of an existing cohort that has no row, rolling back the whole batch', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
      const events = await timelineLength(store, 'c1');
      const batch: Write[] = [eventWrite('c1', 5000, 'x'), { table: 'cohort', row: cohortRecord({ id: 'c2', status: 'open', createdAtMs: 5000 }) }];
      await expect(settled(() => store.scheduler.apply(batch))).rejects.toThrow(/cohorts\[c2\]: written as an existing cohort, but the store has no such row/);
      expect(await timelineLength(store, 'c1')).toBe(events);
      expect((await store.scheduler.load(5000, hour)).cohorts.map((c) => c.cohortId)).toEqual(['c1']);
    });

    it('refuses a second writer while the first is open (exclusive), or fences the first once the second claims (fenced)', async () => {
      const sut = current();
      if (sut.writers === 'exclusive') {
        await sut.store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
        const refused = await sut.openAnother().then(
          () => null,
          (err: unknown) => err as Error & { code?: string },
        );
        expect(refused?.code).toBe('WRITER_LOCKED');
        expect(refused?.message).toContain(`pid ${process.pid}`);
        await sut.store.scheduler.apply([eventWrite('c1', 3000, 'still.first')]);
        await sut.store.close();
        const second = await sut.openAnother();
        await second.scheduler.load(2000, hour);
        await second.scheduler.apply([eventWrite('c1', 4000, 'from.second')]);
        const kinds = (await second.readModel.cohortDetail('c1'))!.timeline.map((e) => e.kind);
        expect(kinds).toEqual(expect.arrayContaining(['still.first', 'from.second']));
        return;
      }
      const first = sut.store;
      await first.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
      const second = await sut.openAnother();
      await second.scheduler.load(2000, hour);
      const err = await expectConflict(first, 'c1', [eventWrite('c1', 3000, 'from.first')], 'writer-deposed');
      expect(err.message).toMatch(/another writer claimed/);
      await second.scheduler.apply([eventWrite('c1', 3000, 'from.second')]);
      const kinds = (await second.readModel.cohortDetail('c1'))!.timeline.map((e) => e.kind);
      expect(kinds).toContain('from.second');
      expect(kinds).not.toContain('from.first');
      await expect(settled(() => first.scheduler.apply([eventWrite('c1', 4000, 'again')]))).rejects.toBeInstanceOf(StoreConflictError);
    });

    it('commits nothing for an empty batch', async () => {
      const { store } = current();
      await store.scheduler.apply([]);
      expect(await store.readModel.listCohorts({ limit: 10 })).toEqual([]);
    });
  });
}
