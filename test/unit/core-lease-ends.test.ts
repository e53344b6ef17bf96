import { describe, expect, it } from 'vitest';
import type { Effect } from '../../server/core/effects.js';
import type { LeaseRecord, StepRecord } from '../../server/core/records.js';
import { recordedDurationMs } from '../../server/core/cohort-reports.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

/**
 * Issue 11, items 5 and 6, on a fake clock: only real deaths count as poison;
 * a lease that never finishes is bounded by its max age; the authority
 * measures durations.
 */

const minute = 60_000;

function lastRow<T extends 'step' | 'lease'>(h: CoreHarness, table: T, key: string): T extends 'step' ? StepRecord : LeaseRecord {
  const rows = h.writes.flatMap((w) => (w.table === table ? [w.row] : [])) as (StepRecord | LeaseRecord)[];
  const hit = rows.filter((r) => ('leaseId' in r ? r.leaseId : r.stepId) === key);
  return hit[hit.length - 1] as T extends 'step' ? StepRecord : LeaseRecord;
}

function stats(effects: readonly Effect[], stat: string): number {
  return effects.filter((e) => e.kind === 'stat' && e.stat === stat).length;
}

describe('only real deaths count toward --max-lost-leases', () => {
  it('a bye releases the lease: the step goes to another peer and is never failed, however often', () => {
    const h = new CoreHarness(flatSchema(1), { maxLostLeases: 1 });
    h.hello('p1');
    h.hello('p2');
    for (const [quitter, next] of [
      ['p1', 'p2'],
      ['p2', 'p3'],
    ] as const) {
      const a = h.lastAssign(quitter)!;
      if (next === 'p3') h.hello('p3');
      const out = h.bye(quitter);
      expect(lastRow(h, 'lease', a.leaseId)).toMatchObject({ end: { kind: 'lost', why: 'bye' } });
      expect(stats(out.effects, 'lease.released')).toBe(1);
      expect(stats(out.effects, 'lease.expired')).toBe(0);
      expect(h.lastAssign(next)).toMatchObject({ stepId: 's1' });
    }
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'leased', lostLeases: 0, failCause: null });
  });

  it('a resume that does not name the step releases it without counting', () => {
    const h = new CoreHarness(flatSchema(1), { maxLostLeases: 1 });
    h.hello('p1');
    const first = h.lastAssign('p1')!;
    h.disconnect('p1');
    const out = h.resume('p1', null);
    expect(lastRow(h, 'lease', first.leaseId)).toMatchObject({ end: { kind: 'lost', why: 'not-resumed' } });
    expect(stats(out.effects, 'lease.released')).toBe(1);
    expect(h.lastAssign('p1')).toMatchObject({ stepId: 's1', attempt: 2 });
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'leased', lostLeases: 0 });
  });

  it('a Task Director client that drops releases its task (client-dropped), counted apart from deaths', () => {
    const h = new CoreHarness(flatSchema(1), { maxLostLeases: 1 });
    h.hello('td1', { resumable: false });
    h.hello('td2', { resumable: false });
    const held = h.effects.find((e): e is Extract<Effect, { kind: 'granted' }> => e.kind === 'granted')!;
    const holder = held.connId === h.conns.get('td1') ? 'td1' : 'td2';
    const other = holder === 'td1' ? 'td2' : 'td1';
    const out = h.disconnect(holder);
    expect(lastRow(h, 'lease', held.leaseId)).toMatchObject({ end: { kind: 'lost', why: 'client-dropped' } });
    expect(stats(out.effects, 'lease.released')).toBe(1);
    expect(out.effects).toContainEqual(expect.objectContaining({ kind: 'granted', connId: h.conns.get(other), stepId: 's1', attempt: 2 }));
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'leased', lostLeases: 0 });
  });

  it('a holder whose grace expires died while running it: that counts, and at the limit the step is poison', () => {
    const h = new CoreHarness(flatSchema(1), { maxLostLeases: 2, leaseGraceMs: minute });
    h.hello('p1');
    h.disconnect('p1');
    h.clock.advance(minute - 1);
    expect(h.tick().effects.filter((e) => e.kind === 'stat')).toEqual([]);
    const first = h.advance(1);
    expect(stats(first.effects, 'lease.expired')).toBe(1);
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'pending', lostLeases: 1 });
    h.hello('p2');
    h.disconnect('p2');
    h.advance(minute);
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'failed', lostLeases: 2, failCause: { kind: 'lost-too-often', lostLeases: 2, last: 'grace-expired' } });
  });
});

describe('--max-lease-age: a lease whose holder never finishes is ended and the step leased again', () => {
  it('default: 4 x the estimate; ends exactly at the deadline, aborts the holder, re-leases to a waiting peer, counts nothing', () => {
    const h = new CoreHarness(dagSchema({ slow: [] }, { slow: 600 }), { sweepIntervalMs: 24 * 3600_000, stragglerFactor: 0 });
    h.hello('p1');
    h.hello('p2');
    const lease = h.lastAssign('p1')!;
    const started = h.clock.now();
    const limit = 4 * 600_000;
    expect(h.scheduler.nextDeadlineMs()).toBe(started + limit);
    h.clock.set(started + limit - 1);
    expect(h.tick().effects.filter((e) => e.kind === 'abort')).toEqual([]);
    h.clock.set(started + limit);
    const out = h.tick();
    expect(messagesIn(out, h.conns.get('p1')!)).toContainEqual({ type: 'abort', stepId: 'slow', leaseId: lease.leaseId, reason: 'lease-lost' });
    expect(lastRow(h, 'lease', lease.leaseId)).toMatchObject({ end: { kind: 'aborted', why: 'max-age' }, endedAtMs: started + limit });
    expect(out.writes).toContainEqual({ table: 'event', row: expect.objectContaining({ kind: 'lease.timed-out', stepId: 'slow', peerId: 'p1', detail: `lease ${lease.leaseId} ran ${limit} ms, past its max age of ${limit} ms; leasing the step again` }) });
    expect(stats(out.effects, 'lease.timed-out')).toBe(1);
    expect(h.lastAssign('p2')).toMatchObject({ stepId: 'slow', attempt: 2, backup: false });
    expect(lastRow(h, 'step', 'slow')).toMatchObject({ status: 'leased', failures: 0, lostLeases: 0, failedOn: ['p1'] });
  });

  it('a step without a real estimate gets 2 h; a tiny recorded estimate gets at least 10 min; --max-lease-age overrides both', () => {
    const noSweep = { sweepIntervalMs: 24 * 3600_000 };
    const unknown = new CoreHarness(flatSchema(1), noSweep);
    unknown.hello('p1');
    expect(unknown.scheduler.nextDeadlineMs()).toBe(unknown.clock.now() + 2 * 3600_000);
    const tiny = new CoreHarness(dagSchema({ quick: [] }, { quick: 1 }), noSweep);
    tiny.hello('p1');
    expect(tiny.scheduler.nextDeadlineMs()).toBe(tiny.clock.now() + 10 * minute);
    const fixed = new CoreHarness(dagSchema({ quick: [] }, { quick: 1 }), { ...noSweep, maxLeaseAgeMs: 90_000 });
    fixed.hello('p1');
    expect(fixed.scheduler.nextDeadlineMs()).toBe(fixed.clock.now() + 90_000);
  });

  it('a Task Director client is bounded the same way: its task is aborted and handed out again', () => {
    const h = new CoreHarness(flatSchema(1), { maxLeaseAgeMs: 5 * minute });
    h.hello('td1', { resumable: false });
    const granted = h.effects.find((e): e is Extract<Effect, { kind: 'granted' }> => e.kind === 'granted')!;
    const out = h.advance(5 * minute);
    expect(out.effects).toContainEqual({ kind: 'abort', connId: h.conns.get('td1'), stepId: 's1', leaseId: granted.leaseId, why: 'max-age' });
    // Alone, it is the only one who can take it again.
    expect(out.effects).toContainEqual(expect.objectContaining({ kind: 'granted', connId: h.conns.get('td1'), stepId: 's1', attempt: 2 }));
  });

  it('a completion after the age limit still counts while the step is unresolved', () => {
    const h = new CoreHarness(flatSchema(1), { maxLeaseAgeMs: minute });
    h.hello('p1');
    h.hello('p2');
    const first = h.lastAssign('p1')!;
    h.advance(minute);
    h.clock.advance(1000);
    const late = h.finish('p1', first.leaseId, 's1', true, { durationMs: minute });
    expect(late.writes).toContainEqual(expect.objectContaining({ table: 'step', row: expect.objectContaining({ stepId: 's1', status: 'succeeded', builtBy: 'p1' }) }));
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'succeeded', builtBy: 'p1', durationMs: minute });
  });
});

describe('the authority measures durations (lease start to completion)', () => {
  it('takes the peer figure only within the measure: no longer, and no shorter than the measure minus the slack (or half)', () => {
    expect(recordedDurationMs(null, 600_000, 5000)).toBe(600_000);
    expect(recordedDurationMs(598_000, 600_000, 5000)).toBe(598_000);
    expect(recordedDurationMs(0, 600_000, 5000)).toBe(595_000);
    expect(recordedDurationMs(1e9, 600_000, 5000)).toBe(600_000);
    expect(recordedDurationMs(0, 4000, 5000)).toBe(2000);
    expect(recordedDurationMs(7, 0, 5000)).toBe(0);
  });

  /** Cohort 1 records s1's duration from a peer that reports `reportedMs` after 10 minutes; cohort 2 runs s1 again with a waiting peer. */
  function secondRun(reportedMs: number): CoreHarness {
    const h = new CoreHarness(flatSchema(1), { stragglerFactor: 2, stragglerMinMs: 30_000, maxLeaseAgeMs: 24 * 3600_000 });
    h.hello('a');
    const a = h.lastAssign('a')!;
    h.clock.advance(10 * minute);
    h.finish('a', a.leaseId, 's1', true, { durationMs: reportedMs, advance: false });
    h.hello('b', { reg: { patchsets: ['refs/changes/2'] } });
    h.hello('c', { reg: { patchsets: ['refs/changes/2'] } });
    expect(h.lastAssign('b')).toMatchObject({ stepId: 's1' });
    return h;
  }

  it('a peer reporting 0 ms can neither drag the estimate down nor trigger an early backup', () => {
    const h = secondRun(0);
    const duration = h.writes.flatMap((w) => (w.table === 'duration' ? [w.row] : []))[0]!;
    expect(duration.avgMs).toBe(10 * minute - 5000);
    expect(h.writes).toContainEqual({ table: 'step', row: expect.objectContaining({ cohortId: 'c1', stepId: 's1', status: 'succeeded', durationMs: 10 * minute - 5000 }) });
    // With 0 ms believed, the backup would start at the 30 s floor; it starts at 2 x the measure.
    h.advance(2 * (10 * minute - 5000) - 1);
    expect(h.sent('c').filter((m) => m.type === 'assign')).toEqual([]);
    h.advance(1);
    expect(h.lastAssign('c')).toMatchObject({ stepId: 's1', backup: true });
  });

  it('a peer reporting 10^9 ms can neither inflate the estimate nor postpone backups', () => {
    const h = secondRun(1e9);
    expect(h.writes.flatMap((w) => (w.table === 'duration' ? [w.row.avgMs] : []))).toEqual([10 * minute]);
    h.advance(20 * minute - 1);
    expect(h.sent('c').filter((m) => m.type === 'assign')).toEqual([]);
    h.advance(1);
    expect(h.lastAssign('c')).toMatchObject({ stepId: 's1', backup: true });
  });
});

describe('--max-lease-age never stops a long step for ever', () => {
  it('each timeout of a step gives its next lease 4 x the limit, so a step far past its estimate finishes', () => {
    const h = new CoreHarness(flatSchema(1), { maxLeaseAgeMs: 10 * minute, stragglerFactor: 0, sweepIntervalMs: 24 * 3600_000 });
    h.hello('p1');
    const t0 = h.clock.now();
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 10 * minute);
    h.clock.set(t0 + 10 * minute);
    h.tick();
    const second = h.lastAssign('p1')!;
    expect(second).toMatchObject({ attempt: 2 });
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 10 * minute + 40 * minute);
    // The step really takes 25 minutes: it finishes on the second lease.
    const done = h.finish('p1', second.leaseId, 's1', true, { durationMs: 25 * minute });
    expect(done.writes).toContainEqual(expect.objectContaining({ table: 'lease', row: expect.objectContaining({ leaseId: second.leaseId, end: { kind: 'succeeded' } }) }));
    expect(lastRow(h, 'step', 's1')).toMatchObject({ status: 'succeeded', builtBy: 'p1', durationMs: 25 * minute });
  });
});
