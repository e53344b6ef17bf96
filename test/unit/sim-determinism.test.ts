import { describe, expect, it } from 'vitest';
import { simulate } from '../../server/sim/simulate.js';
import { singleCohortWorkload } from '../../server/sim/sim-workload.js';
import { capacityBoundMs, percentile } from '../../server/sim/sim-metrics.js';
import { dagSchema } from '../helpers/schemas.js';

const schema = dagSchema({ a: [], b: ['a'], c: ['a'], d: [], e: ['b', 'c', 'd'], f: [] });
const durationsMs = new Map(schema.steps.map((s, i) => [s.id, (i + 1) * 37_000]));

describe('simulator determinism', () => {
  it('the same workload and seed give the same report, run after run', () => {
    const w = singleCohortWorkload({ name: 'det', schema, peers: 4, durationsMs, jitter: 0.3, seed: 42 });
    expect(simulate(w)).toEqual(simulate(w));
  });

  it('the seed changes the jittered durations, and with them the figures', () => {
    const a = simulate(singleCohortWorkload({ name: 'det', schema, peers: 4, durationsMs, jitter: 0.3, seed: 1 }));
    const b = simulate(singleCohortWorkload({ name: 'det', schema, peers: 4, durationsMs, jitter: 0.3, seed: 2 }));
    expect(a.uniqueWorkMs).not.toBe(b.uniqueWorkMs);
    // Every policy of one run sees the same durations: the every-peer baseline builds exactly K times the unique work.
    expect(a.summaries.find((s) => s.policy === 'baseline-every-peer-builds-everything')!.executedWorkMs).toBe(4 * a.uniqueWorkMs);
  });

  it('without jitter the seed changes only the random orders of baseline (c)', () => {
    const a = simulate(singleCohortWorkload({ name: 'det', schema, peers: 3, durationsMs, seed: 1 }));
    const b = simulate(singleCohortWorkload({ name: 'det', schema, peers: 3, durationsMs, seed: 99 }));
    const withoutC = (r: typeof a) => ({
      ...r,
      seed: 0,
      runs: { ...r.runs, 'baseline-shared-cache-random-order': null },
      summaries: r.summaries.filter((s) => s.policy !== 'baseline-shared-cache-random-order'),
    });
    expect(withoutC(a)).toEqual(withoutC(b));
    expect(a.runs['baseline-shared-cache-random-order']).not.toEqual(b.runs['baseline-shared-cache-random-order']);
  });
});

describe('simulator metrics', () => {
  it('capacity bound: work ÷ K when everyone arrives at once, later arrivals add capacity only from their arrival', () => {
    expect(capacityBoundMs([0, 0, 0, 0], 1000)).toBe(250);
    expect(capacityBoundMs([0, 0, 150], 600)).toBe(250);
    // The third peer would arrive after the first two already covered the work.
    expect(capacityBoundMs([0, 0, 10_000], 600)).toBe(300);
    expect(capacityBoundMs([500, 500], 600)).toBe(300);
  });

  it('nearest-rank percentiles', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 95)).toBe(5);
    expect(percentile([7], 99)).toBe(7);
  });
});
