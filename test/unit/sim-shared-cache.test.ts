import { describe, expect, it } from 'vitest';
import { runSharedCacheBaseline, seededRandomOrder } from '../../server/sim/baseline-shared-cache.js';
import { simulate } from '../../server/sim/simulate.js';
import { DurationTable } from '../../server/sim/step-durations.js';
import { policyNames, type PolicyName, type SimReport, type SimWorkload } from '../../server/sim/sim-types.js';
import { simRegistration } from '../../server/sim/sim-workload.js';
import { dagSchema } from '../helpers/schemas.js';

const sec = (s: number): number => s * 1000;

/**
 * The hand-checked case: 2 peers, 3 steps. a (10 s), b (20 s, needs a),
 * c (30 s); p1 arrives at 0, p2 at 10 s. One peer building alone needs 60 s.
 */
const schema = dagSchema({ a: [], b: ['a'], c: [] });
function twoPeers(over: Partial<SimWorkload> = {}): SimWorkload {
  return {
    name: 'hand',
    schema,
    durationsMs: new Map([['a', sec(10)], ['b', sec(20)], ['c', sec(30)]]),
    jitter: 0,
    seed: 1,
    peers: [
      { peerId: 'p1', arrivalMs: 0, registration: simRegistration() },
      { peerId: 'p2', arrivalMs: sec(10), registration: simRegistration() },
    ],
    seedDurations: false,
    ...over,
  };
}

function figures(report: SimReport, policy: PolicyName) {
  const s = report.summaries.find((x) => x.policy === policy)!;
  const runs = report.runs[policy].runs.map((r) => `${r.peerId}:${r.stepId}@${r.startMs / 1000}-${r.endMs / 1000}`).sort(byStart);
  return { runs, buildSec: s.executedWorkMs / 1000, runnerSec: s.runnerTimeMs / 1000, ttuSec: mapSec(s.perPeerTimeToUniverseMs), savedSec: mapSec(s.perPeerSavedMs) };
}
const mapSec = (m: Readonly<Record<string, number>>): Record<string, number> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v / 1000]));

describe('the hand-checked 2-peer, 3-step case under every policy', () => {
  const report = simulate(twoPeers());

  it('(a) no cache: each peer builds a, b, c itself; 120 s of building, runners held 60 s each', () => {
    expect(figures(report, policyNames.everyPeer)).toEqual({
      runs: ['p1:a@0-10', 'p1:b@10-30', 'p2:a@10-20', 'p2:b@20-40', 'p1:c@30-60', 'p2:c@40-70'],
      buildSec: 120,
      runnerSec: 120,
      ttuSec: { p1: 60, p2: 60 },
      savedSec: { p1: 0, p2: 0 },
    });
  });

  it('(b) shared cache, schema order: p2 hits a (finished at 10 s), but b and c are still being built by p1 when p2 starts them', () => {
    // p2 at 10: a in the cache since 10 -> hit; b: p1 finishes it at 30 -> p2 builds it 10-30 too;
    // at 30 both start c (neither finished it) -> both build it. 60 + 50 = 110 s.
    expect(figures(report, policyNames.sharedCacheSchemaOrder)).toEqual({
      runs: ['p1:a@0-10', 'p1:b@10-30', 'p2:b@10-30', 'p1:c@30-60', 'p2:c@30-60'],
      buildSec: 110,
      runnerSec: 110,
      ttuSec: { p1: 60, p2: 50 },
      savedSec: { p1: 0, p2: 10 },
    });
  });

  it('(c) shared cache, own orders: p1 walks c, a, b and p2 a, b, c; each takes what the other finished', () => {
    const orders: Record<string, string[]> = { p1: ['c', 'a', 'b'], p2: ['a', 'b', 'c'] };
    const w = twoPeers();
    const cohorts = report.cohorts;
    const run = runSharedCacheBaseline(w, cohorts, new DurationTable(w), policyNames.sharedCacheRandomOrder, (_c, peerId) => orders[peerId]!);
    // p1: c 0-30; at 30 a is in the cache (p2 finished it at 20) -> hit; b: p2 finishes it at 40 -> p1 builds it 30-50.
    // p2: a 10-20, b 20-40; at 40 c is in the cache (p1 finished it at 30) -> hit. 30 + 20 + 10 + 20 = 80 s.
    expect(run.runs.map((r) => `${r.peerId}:${r.stepId}@${r.startMs / 1000}-${r.endMs / 1000}`).sort(byStart)).toEqual(['p1:c@0-30', 'p2:a@10-20', 'p2:b@20-40', 'p1:b@30-50'].sort(byStart));
    expect(run.peers.map((p) => [p.peerId, p.readyAtMs / 1000])).toEqual([['p1', 50], ['p2', 40]]);
  });

  it('(d) Task Director: pops c, then b (building the missing a first), then a is already a hit', () => {
    expect(figures(report, policyNames.taskDirector)).toEqual({
      runs: ['p1:c@0-30', 'p2:a@10-20', 'p2:b@20-40'],
      buildSec: 60,
      runnerSec: 70,
      ttuSec: { p1: 40, p2: 30 },
      savedSec: { p1: 20, p2: 30 },
    });
  });

  it('taskshard: each step built once, both ready at 40 s (p1 waits for b), runners held 40 + 30 s', () => {
    const f = figures(report, policyNames.taskshard);
    expect(f.buildSec).toBe(60);
    expect(f.runnerSec).toBe(70);
    expect(f.ttuSec).toEqual({ p1: 40, p2: 30 });
    expect(f.savedSec).toEqual({ p1: 20, p2: 30 });
  });

  it('a universe build adds its duration to every peer\'s runner time, under every policy, and nothing to build time', () => {
    const withUniverse = simulate(twoPeers({ universeMs: sec(100) }));
    for (const s of withUniverse.summaries) {
      const before = report.summaries.find((x) => x.policy === s.policy)!;
      expect(s.runnerTimeMs - before.runnerTimeMs).toBe(2 * sec(100));
      expect(s.executedWorkMs).toBe(before.executedWorkMs);
    }
    expect(() => simulate(twoPeers({ universeMs: -1 }))).toThrow('universe build of -1 ms');
  });
});

function byStart(a: string, b: string): number {
  const start = (x: string): number => Number(x.split('@')[1]!.split('-')[0]);
  return start(a) - start(b) || a.localeCompare(b);
}

describe('(c) seeded random orders', () => {
  const wide = dagSchema({ a: [], b: ['a'], c: [], d: ['c', 'a'], e: [], f: ['e'], g: [] });

  it('every order lists each step once, after the steps it needs; same seed, cohort and peer give the same order', () => {
    const order = seededRandomOrder(wide, 7);
    for (const peer of ['p1', 'p2', 'p3', 'p4']) {
      const o = order(0, peer);
      expect([...o].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
      for (const step of wide.steps) for (const need of step.needs) expect(o.indexOf(need)).toBeLessThan(o.indexOf(step.id));
      expect(seededRandomOrder(wide, 7)(0, peer)).toEqual(o);
    }
  });

  it('peers get different orders, and a different seed gives different ones', () => {
    const order = seededRandomOrder(wide, 7);
    const orders = ['p1', 'p2', 'p3', 'p4'].map((p) => order(0, p).join(','));
    expect(new Set(orders).size).toBeGreaterThan(1);
    const other = seededRandomOrder(wide, 8);
    expect(['p1', 'p2', 'p3', 'p4'].map((p) => other(0, p).join(','))).not.toEqual(orders);
  });

  it('simulate runs (c) with the seeded orders, and never builds more than (a)', () => {
    const w = twoPeers({ schema: wide, durationsMs: new Map(wide.steps.map((s, i) => [s.id, sec(10 * (i + 1))])), seed: 3 });
    const report = simulate(w);
    const expected = runSharedCacheBaseline(w, report.cohorts, new DurationTable(w), policyNames.sharedCacheRandomOrder, seededRandomOrder(wide, 3));
    expect(report.runs[policyNames.sharedCacheRandomOrder]).toEqual(expected);
    const c = report.summaries.find((s) => s.policy === policyNames.sharedCacheRandomOrder)!;
    const a = report.summaries.find((s) => s.policy === policyNames.everyPeer)!;
    expect(c.executedWorkMs).toBeLessThanOrEqual(a.executedWorkMs);
  });

  it('an order that is not every step once is a bug and throws', () => {
    const w = twoPeers();
    const cohorts = simulate(w).cohorts;
    expect(() => runSharedCacheBaseline(w, cohorts, new DurationTable(w), policyNames.sharedCacheRandomOrder, () => ['a', 'a', 'b'])).toThrow('is not every step once');
  });
});
