import { describe, expect, it } from 'vitest';
import { defaultCoreConfig } from '../../server/core/core-types.js';
import { allSent, CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

describe('dedup and prioritization', () => {
  it('3 peers x 6 steps: every step leased exactly once, every peer gets complete', () => {
    const h = new CoreHarness(flatSchema(6));
    for (const p of ['a', 'b', 'c']) h.hello(p);
    const leasedBy = new Map<string, string>();
    // Each peer finishes whatever it holds until nothing is left.
    for (let round = 0; round < 10; round++) {
      for (const p of ['a', 'b', 'c']) {
        const assign = h.lastAssign(p);
        if (!assign || leasedBy.has(assign.stepId)) continue;
        leasedBy.set(assign.stepId, p);
        h.finish(p, assign.leaseId, assign.stepId);
      }
    }
    expect([...leasedBy.keys()].sort()).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
    const assigns = h.effects.filter((e) => e.kind === 'granted');
    expect(assigns).toHaveLength(6);
    for (const p of ['a', 'b', 'c']) {
      const complete = h.sent(p).find((m) => m.type === 'complete');
      expect(complete?.type === 'complete' && complete.outcome).toBe('succeeded');
    }
    // Each peer built two steps and saved the other four.
    const summary = h.sent('a').find((m) => m.type === 'complete');
    expect(summary?.type === 'complete' && summary.summary.builtHere).toHaveLength(2);
    expect(summary?.type === 'complete' && summary.summary.savedSec).toBe(4);
  });

  it('hands out the longest critical path first, ties in schema order', () => {
    // chain a -> b (needs a) is 30+30; c alone is 50; d alone 50 (tie with c, later in schema).
    const schema = dagSchema({ d0: [], a: [], b: ['a'], c: [], d: [] }, { d0: 10, a: 30, b: 30, c: 50, d: 50 });
    const h = new CoreHarness(schema);
    for (const p of ['p1', 'p2', 'p3', 'p4', 'p5']) h.hello(p);
    const order = ['p1', 'p2', 'p3', 'p4'].map((p) => h.lastAssign(p)?.stepId);
    // a (60 = a + b) first, then c and d (50, schema order), then d0; b waits for a.
    expect(order).toEqual(['a', 'c', 'd', 'd0']);
    expect(h.sent('p5').map((m) => m.type)).toEqual(['welcome', 'wait']);
  });

  it('respects needs: a step starts only after every step it needs succeeded', () => {
    const h = new CoreHarness(dagSchema({ a: [], b: [], c: ['a', 'b'] }));
    h.hello('p1');
    h.hello('p2');
    h.hello('p3');
    expect(h.lastAssign('p3')).toBeUndefined();
    const a = h.lastAssign('p1')!;
    const out = h.finish('p1', a.leaseId, a.stepId);
    // c still needs b: p1 and p3 wait.
    expect(messagesIn(out, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update', 'wait']);
    const b = h.lastAssign('p2')!;
    const out2 = h.finish('p2', b.leaseId, b.stepId);
    const assigns = allSent(out2).filter(([, m]) => m.type === 'assign');
    expect(assigns).toHaveLength(1);
    expect(assigns[0]![1]).toMatchObject({ type: 'assign', stepId: 'c', attempt: 1, backup: false });
  });

  it('tells an idle peer what runs where, and since when (the lease age), when nothing is assignable', () => {
    const h = new CoreHarness(dagSchema({ a: [], b: ['a'] }));
    h.hello('p1');
    h.clock.advance(5_000);
    const out = h.hello('p2');
    expect(messagesIn(out, h.conns.get('p2')!)).toEqual([
      { type: 'welcome', protocol: 1, peerId: 'p2', resumeToken: 'tok-p2-2', resumed: false, cohort: { id: 'c1', peers: 2, steps: 2, resolved: 0, succeeded: [] }, pingIntervalMs: 15_000 },
      { type: 'wait', cohortId: 'c1', running: [{ stepId: 'a', peerId: 'p1', heldMs: 5_000 }], unresolved: 2 },
    ]);
  });

  it('broadcasts each success to the whole cohort', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1');
    h.hello('p2');
    const a = h.lastAssign('p1')!;
    const out = h.finish('p1', a.leaseId, a.stepId, true, { durationMs: 4200 });
    const update = { type: 'step.update', cohortId: 'c1', stepId: 's1', state: 'succeeded', peerId: 'p1', fromMemo: false, durationMs: 4200 };
    expect(messagesIn(out, h.conns.get('p2')!)).toEqual([update]);
    expect(messagesIn(out, h.conns.get('p1')!)[0]).toEqual(update);
  });

  it('uses recorded durations over estimateSec for later cohorts', () => {
    // By estimate, x (100 s) beats y (10 s); measured, y takes far longer.
    const schema = dagSchema({ x: [], y: [] }, { x: 100, y: 10 });
    const h = new CoreHarness(schema);
    h.hello('p1', { reg: { patchsets: ['first'] } });
    expect(h.lastAssign('p1')!.stepId).toBe('x');
    h.finish('p1', h.lastAssign('p1')!.leaseId, 'x', true, { durationMs: 1_000 });
    h.finish('p1', h.lastAssign('p1')!.leaseId, 'y', true, { durationMs: 500_000 });
    h.hello('p2', { reg: { patchsets: ['second'] } });
    expect(h.lastAssign('p2')!.stepId).toBe('y');
    const durationWrites = h.writes.filter((w) => w.table === 'duration');
    expect(durationWrites.map((w) => w.table === 'duration' && w.row.samples)).toEqual([1, 1]);
  });

  it('keeps the duration as a moving average', () => {
    const schema = dagSchema({ x: [] });
    const h = new CoreHarness(schema, { durationAlpha: 0.5 });
    for (const [i, ms] of [1000, 3000].entries()) {
      h.hello(`p${i}`, { reg: { patchsets: [`ps${i}`] } });
      h.finish(`p${i}`, h.lastAssign(`p${i}`)!.leaseId, 'x', true, { durationMs: ms });
    }
    const last = h.writes.filter((w) => w.table === 'duration').pop();
    expect(last?.table === 'duration' && last.row).toEqual({ durationKey: expect.any(String), avgMs: 2000, samples: 2 });
  });

  it('a peer holds one step at a time', () => {
    const h = new CoreHarness(flatSchema(5));
    h.hello('solo');
    const assigns = h.sent('solo').filter((m) => m.type === 'assign');
    expect(assigns).toHaveLength(1);
  });
});

describe('straggler backup', () => {
  it('gives an idle peer a second copy once a step runs past max(2 x estimate, 30 s); first success wins', () => {
    const h = new CoreHarness(dagSchema({ slow: [], quick: [] }, { slow: 20, quick: 1 }));
    h.hello('p1');
    h.hello('p2');
    const slow = h.lastAssign('p1')!;
    const t0 = h.clock.now();
    expect(slow.stepId).toBe('slow');
    h.finish('p2', h.lastAssign('p2')!.leaseId, 'quick');
    expect(h.sent('p2').pop()).toEqual({ type: 'wait', cohortId: 'c1', running: [{ stepId: 'slow', peerId: 'p1', heldMs: h.clock.now() - t0 }], unresolved: 1 });
    expect(h.scheduler.nextDeadlineMs()).toBe(t0 + 40_000);

    h.clock.set(t0 + 39_999);
    h.tick();
    expect(h.lastAssign('p2')!.stepId).toBe('quick');
    h.clock.set(t0 + 40_000);
    const out = h.tick();
    expect(messagesIn(out, h.conns.get('p2')!)).toEqual([{ type: 'assign', cohortId: 'c1', stepId: 'slow', leaseId: 'l3', attempt: 2, backup: true }]);

    const done = h.finish('p2', 'l3', 'slow');
    expect(messagesIn(done, h.conns.get('p1')!)).toContainEqual({ type: 'abort', stepId: 'slow', leaseId: slow.leaseId, reason: 'superseded' });
    // The aborted original's late completion changes nothing.
    const late = h.finish('p1', slow.leaseId, 'slow');
    expect(messagesIn(late, h.conns.get('p1')!)[0]).toMatchObject({ type: 'error', code: 'STALE_LEASE' });
    expect(late.writes.filter((w) => w.table === 'step' && w.row.status === 'succeeded')).toEqual([]);
  });

  it('never calls a step a straggler while its estimate is only the default guess', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.hello('p2');
    h.advance(60 * 60_000);
    expect(h.lastAssign('p2')).toBeUndefined();
    // Once a duration is recorded for the step, later cohorts do get backups. The authority measured
    // the hour it ran (the peer's 1 s is below the measure minus the slack): 2 x that later.
    h.finish('p1', h.lastAssign('p1')!.leaseId, 's1', true, { durationMs: 1_000 });
    const measuredMs = 60 * 60_000 - defaultCoreConfig.peerDurationSlackMs;
    h.hello('q1', { reg: { patchsets: ['next'] } });
    h.hello('q2', { reg: { patchsets: ['next'] } });
    h.advance(2 * measuredMs - 1);
    expect(h.lastAssign('q2')).toBeUndefined();
    h.advance(1);
    expect(h.lastAssign('q2')).toMatchObject({ stepId: 's1', backup: true });
  });

  it('gives no backups to, or of, peers that cannot resume (Task Director clients)', () => {
    const h = new CoreHarness(dagSchema({ slow: [] }, { slow: 1 }));
    h.hello('old', { resumable: false });
    h.hello('v1');
    h.hello('old2', { resumable: false });
    h.advance(9 * 60_000); // under the 10 min floor of the max lease age
    expect(h.effects.filter((e) => e.kind === 'granted')).toHaveLength(1);
    const h2 = new CoreHarness(dagSchema({ slow: [] }, { slow: 1 }));
    h2.hello('v1');
    h2.hello('old', { resumable: false });
    h2.advance(9 * 60_000);
    expect(h2.lastAssign('old')).toBeUndefined();
  });

  it('never gives the holder a backup of its own step and gives at most one backup', () => {
    const h = new CoreHarness(dagSchema({ slow: [] }, { slow: 1 }));
    h.hello('p1');
    h.hello('p2');
    h.hello('p3');
    h.advance(60_000);
    const assigns = h.effects.filter((e) => e.kind === 'granted');
    expect(assigns).toHaveLength(2);
    expect(h.lastAssign('p1')!.backup).toBe(false);
    expect(h.lastAssign('p2')!.backup).toBe(true);
    expect(h.lastAssign('p3')).toBeUndefined();
  });
});
