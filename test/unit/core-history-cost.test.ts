import { describe, expect, it } from 'vitest';
import type { CoreConfig } from '../../server/core/core-types.js';
import type { Registration } from '../../server/core/records.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/**
 * Cost per event does not depend on history (issue 11, item 1; DESIGN §11),
 * checked structurally: the number of cohorts a hello's lookups examine, and
 * the number of cohorts one sweep tick handles, with 40 or 400 retained
 * cohorts. A scan over the retained cohorts would visit at least that many.
 */

/** Runs `n` one-step cohorts to completion (each its own source state) and leaves them retained. */
function history(h: CoreHarness, n: number, reg: (i: number) => Partial<Registration>): void {
  for (let i = 0; i < n; i++) {
    const peer = `h${i}`;
    h.hello(peer, { reg: reg(i) });
    const a = h.lastAssign(peer)!;
    h.finish(peer, a.leaseId, a.stepId, true, { durationMs: 0 }); // at once: the history shares one instant
    h.bye(peer);
  }
}

/** Cohorts the matcher examined for one hello. */
function visitsOf(h: CoreHarness, peerId: string, reg: Partial<Registration>, schema = h.schema): number {
  const before = h.scheduler.matcherVisits;
  h.hello(peerId, { reg, schema });
  return h.scheduler.matcherVisits - before;
}

const config: Partial<CoreConfig> = { sweepIntervalMs: 3600_000 };

describe('cost per event with retained history', () => {
  it('an independent hello visits only cohorts of its own source state, however many are retained', () => {
    const visits = [40, 400].map((n) => {
      const h = new CoreHarness(flatSchema(1), config);
      history(h, n, (i) => ({ baseSha: `sha-${i}`, patchsets: [] }));
      expect(h.scheduler.cohortsInMemory).toBe(n);
      const fresh = visitsOf(h, 'new', { baseSha: 'sha-new', patchsets: [] });
      h.bye('new');
      // A late peer of a finished run finds it (the matching resolved cohort is still a candidate).
      const late = visitsOf(h, 'late', { baseSha: `sha-${n - 1}`, patchsets: [] });
      expect(h.sent('late').map((m) => m.type)).toEqual(['welcome', 'complete']);
      return { fresh, late };
    });
    expect(visits[1]).toEqual(visits[0]);
    expect(visits[1]!.fresh).toBeLessThanOrEqual(2);
    expect(visits[1]!.late).toBeLessThanOrEqual(2);
  });

  it('a dependent hello visits only cohorts that share one of its patchsets', () => {
    const visits = [40, 400].map((n) => {
      const h = new CoreHarness(flatSchema(1), config);
      history(h, n, (i) => ({ pipelineType: 'dependent', patchsets: [`refs/changes/${i}`] }));
      h.hello('open', { reg: { pipelineType: 'dependent', patchsets: ['refs/changes/q1'] } });
      const v = visitsOf(h, 'joiner', { pipelineType: 'dependent', patchsets: ['refs/changes/q1', 'refs/changes/q2'] });
      const cohortOf = (peerId: string): string | undefined => h.scheduler.dump().peers.find((p) => p.peerId === peerId)?.cohortId;
      expect(cohortOf('joiner')).toBe(cohortOf('open'));
      return v;
    });
    expect(visits[1]).toBe(visits[0]);
    expect(visits[1]).toBeLessThanOrEqual(2);
  });

  it('the digest-drift warning looks at digests, not at every cohort of the schema', () => {
    const visits = [40, 400].map((n) => {
      const h = new CoreHarness(flatSchema(1), config);
      history(h, n, (i) => ({ baseSha: `sha-${i}`, patchsets: [] }));
      const drifted = { ...flatSchema(1), universe: '//other/...' };
      const before = h.scheduler.matcherVisits;
      const out = h.hello('drift', { reg: { baseSha: 'sha-d', patchsets: [] }, schema: drifted });
      expect(out.effects.some((e) => e.kind === 'notice' && e.message === 'schema id seen with different digests')).toBe(true);
      return h.scheduler.matcherVisits - before;
    });
    expect(visits[1]).toBe(visits[0]);
    // The open cohorts of the joiner's repo and settings: here only its own, seen by the why-alone lookups.
    expect(visits[1]).toBeLessThanOrEqual(3);
  });

  it('gauges come from indexes and agree with a recount', () => {
    const h = new CoreHarness(flatSchema(2), config);
    history(h, 30, (i) => ({ baseSha: `sha-${i}`, patchsets: [] }));
    h.hello('a', { reg: { baseSha: 'x', patchsets: [] } });
    h.hello('b', { reg: { baseSha: 'x', patchsets: [] } });
    const dump = h.scheduler.dump();
    expect(h.scheduler.counts()).toEqual({
      peersConnected: dump.peers.filter((p) => p.status === 'connected').length,
      cohortsOpen: dump.cohorts.filter((c) => c.status === 'open').length,
      leasesLive: dump.leases.filter((l) => l.end === null).length,
    });
    expect(h.scheduler.counts()).toEqual({ peersConnected: 2, cohortsOpen: 1, leasesLive: 2 });
  });
});

describe('bounded sweeps', () => {
  it('evicts a backlog of retained cohorts one batch per tick, asking for the next tick at once', () => {
    const h = new CoreHarness(flatSchema(1), { cohortRetentionMs: 10_000, sweepIntervalMs: 1_000, sweepBatch: 50 });
    history(h, 230, (i) => ({ baseSha: `sha-${i}`, patchsets: [] }));
    h.clock.advance(10_000);
    const sizes: number[] = [];
    for (let i = 0; i < 10 && h.scheduler.cohortsInMemory > 0; i++) {
      h.tick();
      sizes.push(h.scheduler.cohortsInMemory);
      if (h.scheduler.cohortsInMemory > 0) expect(h.scheduler.nextDeadlineMs()).toBe(h.clock.now()); // backlog: again at once
    }
    expect(sizes).toEqual([180, 130, 80, 30, 0]);
    expect(h.scheduler.nextDeadlineMs()).toBeGreaterThan(h.clock.now()); // the backlog is done (memos expire later)
  });

  it('expires memos through the same heap, one batch per tick, and keeps a memo replaced by a newer success', () => {
    const h = new CoreHarness(flatSchema(1), { memoTtlMs: 5_000, cohortRetentionMs: 3600_000, sweepIntervalMs: 1_000, sweepBatch: 10 });
    history(h, 25, (i) => ({ baseSha: `sha-${i}`, patchsets: [`refs/changes/${i}`] }));
    expect(h.scheduler.dump().memos).toHaveLength(25);
    h.clock.advance(5_000);
    const deleted = (): number => h.tick().writes.filter((w) => w.table === 'memo.delete').length;
    const counts = [deleted(), deleted(), deleted(), deleted()];
    // Each tick takes at most 10 entries (memos and cohorts' idle checks share the batch).
    for (const c of counts) expect(c).toBeLessThanOrEqual(10);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(25);
    expect(h.scheduler.dump().memos).toEqual([]);
  });
});
