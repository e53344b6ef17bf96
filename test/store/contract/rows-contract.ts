import { describe, expect, it } from 'vitest';
import type { CoreOutput } from '../../../server/core/core-types.js';
import type { EventRecord, Write } from '../../../server/core/records.js';
import { CoreHarness } from '../../helpers/core-harness.js';
import { dagSchema } from '../../helpers/schemas.js';
import type { StoreFactory } from './store-contract.js';
import { useStore } from './use-store.js';

const hour = 3600_000;

/**
 * Issue 17, fewer rows: each assignment writes what recovery and the API need, once. A grant
 * writes its lease row and no step row; an event that restates a lease's grant or end gets no
 * event row (server/store/lease-events.ts); a success writes its step row and no success row. Rows are counted from the store itself (what pruning
 * the cohort removes), and the timeline read back must still be exactly the core's events.
 */
function threePeersFourSteps(): { h: CoreHarness; batches: Write[][] } {
  const h = new CoreHarness(dagSchema({ a: [], b: [], c: ['a'], d: [] }));
  const batches: Write[][] = [];
  const keep = (out: CoreOutput): void => void batches.push([...out.writes]);
  for (const p of ['p1', 'p2', 'p3']) keep(h.hello(p));
  // One attempt fails and is retried; the rest succeed; everyone leaves.
  let failed = false;
  for (let guard = 0; guard < 50; guard++) {
    const running = ['p1', 'p2', 'p3'].map((p) => ({ p, a: h.lastAssign(p) })).filter(({ p, a }) => a !== undefined && h.leaseRow(a.leaseId)?.end === null && p);
    if (running.length === 0) break;
    for (const { p, a } of running) {
      const ok = failed || a!.stepId !== 'b';
      if (!ok) failed = true;
      h.clock.advance(100);
      keep(h.finish(p, a!.leaseId, a!.stepId, ok, ok ? {} : { exitCode: 3 }));
    }
  }
  for (const p of ['p1', 'p2', 'p3']) keep(h.bye(p));
  return { h, batches };
}

export function rowsContract(factory: StoreFactory): void {
  describe('rows written per assignment', () => {
    const current = useStore(factory);

    it('stores no event row and no step row that restates a lease row, and reads the same timeline back', async () => {
      const { h, batches } = threePeersFourSteps();
      const { store } = current();
      for (const batch of batches) await store.scheduler.apply(batch);
      const writes = batches.flat();
      const events = writes.filter((w): w is Extract<Write, { table: 'event' }> => w.table === 'event').map((w) => w.row);
      const cohortId = events[0]!.cohortId;
      const assignments = writes.filter((w) => w.table === 'lease' && w.row.end === null).length;
      expect(assignments).toBe(5); // four steps, one retried

      // The timeline is exactly what the core logged, in its order, text included.
      const detail = (await store.readModel.cohortDetail(cohortId))!;
      const strip = (e: EventRecord) => ({ atMs: e.atMs, kind: e.kind, stepId: e.stepId, peerId: e.peerId, detail: e.detail });
      expect(detail.timeline.map(({ seq: _seq, ...e }) => e)).toEqual(events.map(strip));
      expect(new Set(detail.timeline.map((e) => e.seq)).size).toBe(events.length);
      expect(detail.timeline.map((e) => e.kind)).toContain('step.leased');
      expect(detail.timeline.map((e) => e.kind)).toContain('step.attempt-failed');

      // What the store holds: events only for what no lease row says. Here: the cohort and peer
      // events, the retry, and a late completion (its lease had ended before, so its success is not
      // that lease's end). Every grant and every lease end is on its lease row.
      const storedKinds = ['cohort.created', 'peer.joined', 'peer.joined', 'peer.joined', 'step.retry', 'step.late-completion', 'step.succeeded', 'cohort.complete', 'peer.left', 'peer.left', 'peer.left'];
      expect(events.filter((e) => e.leaseId === undefined).map((e) => e.kind)).toEqual(storedKinds);
      expect(events.filter((e) => e.kind === 'step.leased' && e.leaseId !== undefined)).toHaveLength(assignments);
      h.clock.advance(hour);
      const pruned = await store.retention.pruneHistory(h.clock.now(), 10);
      // No success row: a step's success is its step row (step_successes is no longer written).
      expect(pruned.removed).toEqual({ cohorts: 1, steps: 4, successes: 0, leases: 5, peers: 3, events: storedKinds.length });
      // No step row per grant: 4 written as the cohort is created (one already leased in that input),
      // 1 as the failed attempt sends b back to pending, 4 as the steps succeed; the 5 grants add none.
      expect(writes.filter((w) => w.table === 'step')).toHaveLength(9);
    });

    it('reads a step as leased, with every attempt counted, while a lease of it is live (no step row was written for the grant)', async () => {
      const h = new CoreHarness(dagSchema({ a: [] }));
      const { store } = current();
      await store.scheduler.apply(h.hello('p1').writes);
      const lease = h.lastAssign('p1')!;
      await store.scheduler.apply(h.finish('p1', lease.leaseId, 'a', false, { exitCode: 1 }).writes);
      // Retried on the same peer (the only one): attempt 2 is live; the last step row says pending, attempts 1.
      const again = h.lastAssign('p1')!;
      expect(again.attempt).toBe(2);
      const detail = (await store.readModel.cohortDetail(again.cohortId))!;
      expect(detail.steps[0]).toMatchObject({ status: 'leased', attempts: 2, failures: 1 });
      expect(detail.cohort.steps).toMatchObject({ pending: 0, leased: 1 });
      const loaded = await store.scheduler.load(h.clock.now(), hour);
      expect(loaded.steps[0]).toMatchObject({ status: 'leased', attempts: 2, failures: 1 });
    });
  });
}
