import { describe, expect, it } from 'vitest';
import { CoreHarness, messagesIn, snapshotFromWrites } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/**
 * Issue #12, finding 7: one client could open any number of max-size cohorts
 * (5 MB each) and they lived 48 h. Now each source (repo + cache id) has a cap
 * on open cohorts and on the steps in them, and an open cohort nobody is in
 * is abandoned after the idle-cohort TTL (default 1 h), not the retention.
 */

describe('quotas per source (repo + cache id)', () => {
  it('refuses a hello that would create one open cohort too many, naming the source; joining, other sources and later cohorts are not affected', () => {
    const h = new CoreHarness(flatSchema(1), { maxOpenCohortsPerSource: 2 });
    h.hello('a', { reg: { patchsets: ['p1'] } });
    h.hello('b', { reg: { patchsets: ['p2'] } });
    const out = h.hello('c', { reg: { patchsets: ['p3'] } });
    const conn = h.conns.get('c')!;
    expect(messagesIn(out, conn)).toEqual([
      {
        type: 'error',
        code: 'QUOTA_EXCEEDED',
        retryable: true,
        message: 'repo git@example.com:acme/mono.git with cache cache-1 already has 2 open cohorts, the most one source may have; join one or wait for one to finish',
      },
    ]);
    // A typed refusal; the transport closes with the registry's code for QUOTA_EXCEEDED (1008).
    expect(out.effects).toEqual([{ kind: 'refuse', connId: conn, refusal: { kind: 'quota-exceeded', repo: 'git@example.com:acme/mono.git', cacheId: 'cache-1', quota: 'cohorts', held: 2, requested: 1, limit: 2 } }]);
    expect(out.writes).toEqual([]);
    // Joining an existing cohort of the source is never refused.
    expect(messagesIn(h.hello('a2', { reg: { patchsets: ['p1'] } }), h.conns.get('a2')!)[0]).toMatchObject({ type: 'welcome', cohort: { id: 'c1' } });
    // Another cache id (or repo) is another source.
    expect(messagesIn(h.hello('d', { reg: { patchsets: ['p3'], cacheId: 'cache-2' } }), h.conns.get('d')!)[0]).toMatchObject({ type: 'welcome', cohort: { id: 'c3' } });
    // Once a cohort of the source completes, a new one may open.
    const a = h.lastAssign('a')!;
    h.finish('a', a.leaseId, a.stepId);
    expect(messagesIn(h.hello('e', { reg: { patchsets: ['p4'] } }), h.conns.get('e')!)[0]).toMatchObject({ type: 'welcome', cohort: { id: 'c4' } });
  });

  it('refuses a new cohort whose steps would pass the per-source step cap', () => {
    const h = new CoreHarness(flatSchema(2), { maxStepsPerSource: 3 });
    h.hello('a', { reg: { patchsets: ['p1'] } });
    const out = h.hello('b', { reg: { patchsets: ['p2'] } });
    expect(messagesIn(out, h.conns.get('b')!)).toEqual([
      expect.objectContaining({ code: 'QUOTA_EXCEEDED', message: 'repo git@example.com:acme/mono.git with cache cache-1 already holds 2 steps in open cohorts; 2 more would pass the limit of 3 per source' }),
    ]);
  });

  it('counts cohorts restored after a restart', () => {
    const h = new CoreHarness(flatSchema(1), { maxOpenCohortsPerSource: 1 });
    h.hello('a', { reg: { patchsets: ['p1'] } });
    const restarted = new CoreHarness(flatSchema(1), { maxOpenCohortsPerSource: 1 });
    restarted.restore(snapshotFromWrites(h.writes));
    const out = restarted.hello('b', { reg: { patchsets: ['p2'] } });
    expect(messagesIn(out, restarted.conns.get('b')!)).toEqual([expect.objectContaining({ code: 'QUOTA_EXCEEDED' })]);
  });
});

describe('short life for cohorts nobody is in', () => {
  it('abandons an open cohort whose members are all gone after the idle-cohort TTL (1 h by default), not the 24 h retention', () => {
    // (A cohort every member left on purpose, with bye, is abandoned at once: cohort-abandon.test.ts.)
    const h = new CoreHarness(flatSchema(2), { sweepIntervalMs: 1, leaseGraceMs: 0 });
    h.hello('a');
    h.disconnect('a'); // no grace: gone at once
    const ttl = 3600_000;
    const before = h.advance(ttl - 1);
    expect(before.writes.filter((w) => w.table === 'cohort')).toEqual([]);
    const at = h.advance(1);
    expect(at.writes).toContainEqual({ table: 'cohort', row: expect.objectContaining({ cohortId: 'c1', status: 'cancelled', outcome: { kind: 'cancelled', by: 'abandoned' } }) });
    expect(h.scheduler.counts().cohortsOpen).toBe(0);
  });

  it('abandons a cohort whose only peer vanished (nobody else joined) once its grace is over and the TTL passed', () => {
    const h = new CoreHarness(flatSchema(1), { sweepIntervalMs: 1, leaseGraceMs: 1000, idleCohortTtlMs: 5000 });
    h.hello('a');
    h.disconnect('a');
    h.advance(1000);
    expect(h.scheduler.counts().cohortsOpen).toBe(1);
    h.advance(4999);
    expect(h.scheduler.counts().cohortsOpen).toBe(1);
    h.advance(1);
    expect(h.scheduler.counts().cohortsOpen).toBe(0);
  });

  it('keeps a cohort with an active peer open past the TTL', () => {
    const h = new CoreHarness(flatSchema(2), { sweepIntervalMs: 1, idleCohortTtlMs: 1000 });
    h.hello('a');
    h.advance(5000);
    expect(h.scheduler.counts().cohortsOpen).toBe(1);
  });
});
