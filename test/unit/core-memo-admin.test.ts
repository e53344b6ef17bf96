import { describe, expect, it } from 'vitest';
import { defaultCoreConfig } from '../../server/core/core-types.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

const sha = 'c'.repeat(40);
const ttl = defaultCoreConfig.memoTtlMs;

function runToCompletion(h: CoreHarness, peerId: string): void {
  for (let i = 0; i < 20; i++) {
    const a = h.lastAssign(peerId);
    if (!a || h.sent(peerId).some((m) => m.type === 'complete')) return;
    h.finish(peerId, a.leaseId, a.stepId);
  }
}

describe('memo', () => {
  it('a later peer with the exact same source state gets the steps as done, built by nobody', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('first', { reg: { baseSha: sha } });
    runToCompletion(h, 'first');
    h.bye('first');
    // Past the cohort's retention it would be forgotten; the memo is what carries over. Use a new cache-equal state
    // in a separate cohort: an isolated peer never joins the finished cohort, so only the memo can help it.
    const out = h.hello('later', { reg: { baseSha: sha, isolated: true } });
    const conn = h.conns.get('later')!;
    expect(messagesIn(out, conn)).toEqual([
      { type: 'welcome', protocol: 1, peerId: 'later', resumeToken: `tok-later-${conn}`, resumed: false, cohort: { id: 'c2', peers: 1, steps: 2, resolved: 2, succeeded: [{ stepId: 's1', peerId: null, fromMemo: true }, { stepId: 's2', peerId: null, fromMemo: true }] }, pingIntervalMs: 15_000 },
      { type: 'complete', cohortId: 'c2', outcome: 'succeeded', summary: { builtHere: [], builtByOthers: [], fromMemo: ['s1', 's2'], failed: [], savedSec: 2, builtSec: 0, aloneSec: 0, spentSec: 0 } },
    ]);
    const succeeded = out.writes.flatMap((w) => (w.table === 'step' ? [[w.row.cohortId, w.row.stepId, w.row.status, w.row.fromMemo, w.row.builtBy, w.row.resolvedAtMs]] : []));
    expect(succeeded).toEqual([
      ['c2', 's1', 'succeeded', true, null, h.clock.now()],
      ['c2', 's2', 'succeeded', true, null, h.clock.now()],
    ]);
    expect(out.effects.filter((e) => e.kind === 'stat' && e.stat === 'step.reused')).toHaveLength(2);
  });

  it('needs a known base sha, the same patchsets and the same cache', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('a', { reg: { baseSha: null } });
    runToCompletion(h, 'a');
    h.hello('b', { reg: { baseSha: sha, isolated: true } });
    expect(h.lastAssign('b')).toBeDefined(); // nothing memoized without a sha
    runToCompletion(h, 'b');
    h.hello('c', { reg: { baseSha: sha, isolated: true, patchsets: ['other'] } });
    h.hello('d', { reg: { baseSha: sha, isolated: true, cacheId: 'cache-2' } });
    h.hello('e', { reg: { baseSha: sha, isolated: true } });
    expect(h.lastAssign('c')).toBeDefined();
    expect(h.lastAssign('d')).toBeDefined();
    expect(h.lastAssign('e')).toBeUndefined();
  });

  it('is used strictly before its expiry and not at it', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('a', { reg: { baseSha: sha } });
    runToCompletion(h, 'a');
    const madeAt = h.clock.now(); // the memo is made when the step succeeds
    h.clock.set(madeAt + ttl - 1);
    h.hello('before', { reg: { baseSha: sha, isolated: true } });
    expect(h.lastAssign('before')).toBeUndefined();
    h.clock.set(madeAt + ttl);
    h.hello('at', { reg: { baseSha: sha, isolated: true } });
    expect(h.lastAssign('at')).toMatchObject({ stepId: 's1' });
  });
});

describe('admin', () => {
  it('cancel aborts running leases, fails what is left and completes every peer with outcome cancelled', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('p1');
    h.hello('p2');
    const lease = h.lastAssign('p1')!;
    const out = h.handle({ kind: 'cancel', cohortId: 'c1' });
    expect(out.admin).toEqual({ ok: true });
    expect(messagesIn(out, h.conns.get('p1')!)).toEqual([
      { type: 'abort', stepId: lease.stepId, leaseId: lease.leaseId, reason: 'cancelled' },
      expect.objectContaining({ type: 'complete', outcome: 'cancelled' }),
    ]);
    expect(h.handle({ kind: 'cancel', cohortId: 'c1' }).admin).toMatchObject({ ok: false, status: 409 });
    expect(h.handle({ kind: 'cancel', cohortId: 'nope' }).admin).toMatchObject({ ok: false, status: 404 });
    // A cancelled cohort takes no new peer.
    h.hello('p3');
    expect(h.lastAssign('p3')!.cohortId).toBe('c2');
  });

  it('retry puts a failed step (and what failed because of it) back to pending and reopens the cohort', () => {
    const h = new CoreHarness(dagSchema({ a: [], b: ['a'] }), { maxFailures: 1 });
    h.hello('p1');
    h.finish('p1', h.lastAssign('p1')!.leaseId, 'a', false);
    expect(h.sent('p1').pop()).toMatchObject({ type: 'complete', outcome: 'failed' });
    expect(h.handle({ kind: 'retry', cohortId: 'c1', stepId: 'b' }).admin).toMatchObject({ ok: false, status: 409, code: 'NEEDS_FAILED' });
    expect(h.handle({ kind: 'retry', cohortId: 'c1', stepId: 'zz' }).admin).toMatchObject({ ok: false, status: 404 });
    const out = h.handle({ kind: 'retry', cohortId: 'c1', stepId: 'a' });
    expect(out.admin).toEqual({ ok: true });
    const rows = out.writes.flatMap((w) => (w.table === 'step' ? [[w.row.stepId, w.row.status]] : w.table === 'cohort' ? [['cohort', w.row.status]] : []));
    expect(rows).toEqual([['cohort', 'open'], ['a', 'pending'], ['b', 'pending']]);
    // The cohort is joinable again and its work continues with a new peer.
    h.hello('p2');
    expect(h.lastAssign('p2')).toMatchObject({ cohortId: 'c1', stepId: 'a', attempt: 2 });
  });
});

describe('draining', () => {
  it('grants no new lease once draining, but still records completions', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1');
    const lease = h.lastAssign('p1')!;
    h.handle({ kind: 'drain' });
    const out = h.finish('p1', lease.leaseId, lease.stepId);
    expect(out.writes.filter((w) => w.table === 'step' && w.row.status === 'succeeded')).toHaveLength(1);
    expect(messagesIn(out, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update']);
  });
});

describe('retention', () => {
  it('forgets resolved cohorts after the retention period and abandons idle open ones', () => {
    const h = new CoreHarness(flatSchema(1), { cohortRetentionMs: 1000, sweepIntervalMs: 100 });
    h.hello('done');
    runToCompletion(h, 'done');
    h.bye('done');
    h.hello('idle', { reg: { patchsets: ['other'] } });
    // Its only member left: abandoned at once (cohort-abandon.test.ts), then forgotten like any resolved cohort.
    expect(h.bye('idle').writes).toContainEqual({ table: 'cohort', row: expect.objectContaining({ cohortId: 'c2', status: 'cancelled' }) });
    h.advance(1000);
    h.advance(1000);
    expect(h.scheduler.counts()).toEqual({ peersConnected: 0, cohortsOpen: 0, leasesLive: 0 });
    // The finished cohort is gone from memory: a new identical peer starts over.
    h.hello('again');
    expect(h.lastAssign('again')!.cohortId).toBe('c3');
  });
});
