import { describe, expect, it } from 'vitest';
import { CoreHarness } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

describe('the next deadline', () => {
  it('is the earliest grace end still pending (a resumed peer no longer counts), then nothing but the sweep', () => {
    const sweepMs = 10 * 3600_000;
    const h = new CoreHarness(flatSchema(3), { leaseGraceMs: 60_000, sweepIntervalMs: sweepMs, maxLeaseAgeMs: 2 * sweepMs });
    const t0 = h.clock.now();
    for (const p of ['p1', 'p2', 'p3']) h.hello(p);
    h.disconnect('p1');
    h.clock.advance(10_000);
    h.disconnect('p2');
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 60_000);
    h.resume('p1', { stepId: h.lastAssign('p1')!.stepId, leaseId: h.lastAssign('p1')!.leaseId });
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 70_000);
    h.clock.set(t0 + 70_000 - 1);
    expect(h.tick().writes.filter((w) => w.table === 'peer')).toEqual([]); // before the edge: nothing
    h.clock.set(t0 + 70_000);
    expect(h.tick().writes).toContainEqual({ table: 'peer', row: expect.objectContaining({ peerId: 'p2', status: 'gone' }) });
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + sweepMs);
  });

  it('a straggler backup is a deadline only while a peer of its cohort waits', () => {
    const h = new CoreHarness(dagSchema({ slow: [] }, { slow: 10 }), { stragglerFactor: 2, stragglerMinMs: 1_000, sweepIntervalMs: 10 * 3600_000, maxLeaseAgeMs: 20 * 3600_000 });
    const t0 = h.clock.now();
    h.hello('p1');
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 10 * 3600_000); // nobody waits: only the sweep
    h.hello('p2');
    expect(h.sent('p2').map((m) => m.type)).toEqual(['welcome', 'wait']);
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 20_000); // 2 x the 10 s estimate
    h.clock.set(t0 + 20_000);
    h.tick();
    expect(h.lastAssign('p2')).toMatchObject({ stepId: 'slow', backup: true });
  });
});
