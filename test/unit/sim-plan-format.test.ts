import { describe, expect, it } from 'vitest';
import { formatPlanText, saving } from '../../server/sim/plan-format.js';
import { planSchedule, type Plan } from '../../server/sim/plan.js';
import { dagSchema } from '../helpers/schemas.js';

const schema = dagSchema({ a: [], b: ['a'], c: [] }, { a: 10, b: 20, c: 30 });

describe('plan figures', () => {
  it('the hand-checked 2-peer, 3-step case: makespan, build time and runner time of taskshard and each baseline', () => {
    // a 10 s, b 20 s (needs a), c 30 s; p1 at 0, p2 at 10 s (see sim-shared-cache.test.ts for the step-by-step runs).
    const plan = planSchedule({ schema, peerCounts: [2], arrivalsSec: [0, 10], durationsSec: new Map() });
    const f = plan.counts[0]!.policies;
    expect(f.taskshard).toEqual({ makespanMs: 40_000, buildMs: 60_000, runnerMs: 70_000 });
    expect(f['baseline-shared-cache-schema-order']).toEqual({ makespanMs: 60_000, buildMs: 110_000, runnerMs: 110_000 });
    expect(f['baseline-every-peer-builds-everything']).toEqual({ makespanMs: 70_000, buildMs: 120_000, runnerMs: 120_000 });
    expect(f['baseline-task-director']).toEqual({ makespanMs: 40_000, buildMs: 60_000, runnerMs: 70_000 });
    expect(saving(plan.counts[0]!, 'baseline-shared-cache-schema-order')).toEqual({ runnerMs: 40_000, buildMs: 50_000, runnerShare: '36.4%', buildShare: '45.5%' });
  });

  it('recommends the smallest count within 5% of the best makespan', () => {
    // Work 60 s, critical path 30 s: 1 peer 60 s, 2 peers 30 s, more peers no faster.
    const plan = planSchedule({ schema, peerCounts: [1, 2, 3, 4], durationsSec: new Map() });
    expect(plan.counts.map((c) => c.policies.taskshard.makespanMs)).toEqual([60_000, 30_000, 30_000, 30_000]);
    expect(plan.recommendedPeers).toBe(2);
  });

  it('a peer whose wait is longer than building alone is told its saving is negative, not that it saved time', () => {
    const plan: Plan = planSchedule({ schema, peerCounts: [1], durationsSec: new Map() });
    const peer = plan.counts[0]!.perPeer[0]!;
    const waited: Plan = { ...plan, counts: [{ ...plan.counts[0]!, perPeer: [{ ...peer, readyAtMs: 75_000, savedMs: 60_000 - 75_000 }] }] };
    expect(formatPlanText(waited)).toContain('p1: arrives 0:00:00, 3 steps, busy 1m00s, ready for its universe build at 0:01:15; NEGATIVE saving: 15s more than building alone (1m00s), because it waits for the others');
  });
});
