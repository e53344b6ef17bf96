import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulate } from '../../server/sim/simulate.js';
import { peerIds, simRegistration, singleCohortWorkload } from '../../server/sim/sim-workload.js';
import type { SimWorkload } from '../../server/sim/sim-types.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

const sec = (s: number): number => s * 1000;

/** A flat schema whose durations the core knows (as recorded after earlier runs), so no straggler backups. */
function flatWorkload(durationsSec: number[], peers: number): SimWorkload {
  const schema = flatSchema(durationsSec.length);
  const durationsMs = new Map(schema.steps.map((s, i) => [s.id, sec(durationsSec[i]!)]));
  return singleCohortWorkload({ name: 'flat', schema, peers, durationsMs, seedDurations: true });
}

describe('simulator over the real core', () => {
  it('flat schema, K peers: every step built exactly once, makespan between the lower bound and list scheduling bound', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 12 }), (durations, k) => {
        const report = simulate(flatWorkload(durations, k));
        const core = report.summaries[0]!;
        expect(core.policy).toBe('taskshard');
        expect(core.executedOverUnique).toBe(1);
        expect(core.abortedRuns).toBe(0);
        const built = report.runs.taskshard.runs.map((r) => r.stepId);
        expect(built).toHaveLength(durations.length);
        expect(new Set(built).size).toBe(durations.length);
        const total = sec(durations.reduce((a, b) => a + b, 0));
        const longest = sec(Math.max(...durations));
        const cohort = report.cohorts[0]!;
        expect(report.cohorts).toHaveLength(1);
        expect(cohort.lowerBoundMs).toBe(Math.max(longest, total / k));
        const makespan = Math.max(...report.runs.taskshard.peers.map((p) => p.readyAtMs));
        expect(makespan).toBeGreaterThanOrEqual(cohort.lowerBoundMs);
        // Graham: greedy list scheduling ends by total ÷ K + the longest step.
        expect(makespan).toBeLessThanOrEqual(total / k + longest);
        expect(core.makespanOverLowerBound.mean).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 60 },
    );
  });

  it('hands out the longest critical path first (the core decides, the simulator only follows assign frames)', () => {
    // a -> b is 100 + 100; c is 150; d is 10. Two peers: a and c first, then b, then d.
    const schema = dagSchema({ d: [], c: [], a: [], b: ['a'] }, { d: 10, c: 150, a: 100, b: 100 });
    const report = simulate(singleCohortWorkload({ name: 'dag', schema, peers: 2, durationsMs: new Map([['a', sec(100)], ['b', sec(100)], ['c', sec(150)], ['d', sec(10)]]) }));
    const order = report.runs.taskshard.runs.map((r) => `${r.peerId}:${r.stepId}@${r.startMs / 1000}`);
    expect(order).toEqual(['p1:a@0', 'p2:c@0', 'p1:b@100', 'p2:d@150']);
    expect(report.cohorts[0]!.criticalPathMs).toBe(sec(200));
    expect(report.summaries[0]!.timeToUniverseMs.max).toBe(sec(200));
  });

  it('a step never starts before the steps it needs finished', () => {
    const schema = dagSchema({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'], e: [] });
    const report = simulate(singleCohortWorkload({ name: 'dag', schema, peers: 4, durationsMs: new Map(schema.steps.map((s, i) => [s.id, sec(10 + i * 7)])) }));
    const end = new Map(report.runs.taskshard.runs.map((r) => [r.stepId, r.endMs]));
    for (const run of report.runs.taskshard.runs) {
      for (const need of schema.steps.find((s) => s.id === run.stepId)!.needs) expect(run.startMs).toBeGreaterThanOrEqual(end.get(need)!);
    }
  });

  it('a long step the core underestimates gets a straggler backup copy, which shows up as wasted work', () => {
    // estimateSec says 60 s each; s1 really takes 20 minutes.
    const schema = { ...flatSchema(4), steps: flatSchema(4).steps.map((s) => ({ ...s, estimateSec: 60 })) };
    const durationsMs = new Map(schema.steps.map((s) => [s.id, s.id === 's1' ? sec(1200) : sec(60)]));
    const blind = simulate(singleCohortWorkload({ name: 'blind', schema, peers: 3, durationsMs }));
    const core = blind.summaries[0]!;
    expect(blind.runs.taskshard.runs.some((r) => r.kind === 'backup' && r.aborted)).toBe(true);
    expect(core.executedOverUnique).toBeGreaterThan(1);
    // With recorded durations (as after earlier runs) the core knows better: no backup.
    const informed = simulate(singleCohortWorkload({ name: 'informed', schema, peers: 3, durationsMs, seedDurations: true }));
    expect(informed.summaries[0]!.executedOverUnique).toBe(1);
    expect(informed.runs.taskshard.runs.some((r) => r.kind === 'backup')).toBe(false);
    // With no estimate at all the core never calls a step a straggler: no backup, no waste.
    const guessing = simulate(singleCohortWorkload({ name: 'guessing', schema: flatSchema(4), peers: 3, durationsMs }));
    expect(guessing.runs.taskshard.runs.some((r) => r.kind === 'backup')).toBe(false);
    expect(guessing.summaries[0]!.executedOverUnique).toBe(1);
  });

  it('peers arriving over time: late peers get only what is left, and one that arrives after the end is ready at once', () => {
    const schema = flatSchema(6);
    const durationsMs = new Map(schema.steps.map((s) => [s.id, sec(100)]));
    const arrivals = [0, 0, 150, 10_000];
    const workload: SimWorkload = {
      name: 'late',
      schema,
      durationsMs,
      jitter: 0,
      seed: 1,
      seedDurations: false,
      // With a base sha: a peer without one never joins a finished cohort (issue 13).
      peers: peerIds(4).map((peerId, i) => ({ peerId, arrivalMs: sec(arrivals[i]!), registration: simRegistration({ baseSha: 'a'.repeat(40) }) })),
    };
    const report = simulate(workload);
    expect(report.cohorts).toHaveLength(1);
    const ttu = report.summaries[0]!.perPeerTimeToUniverseMs;
    expect(ttu.p4).toBe(0);
    expect(report.runs.taskshard.runs.filter((r) => r.peerId === 'p4')).toEqual([]);
    expect(report.runs.taskshard.runs.filter((r) => r.peerId === 'p3').length).toBeGreaterThan(0);
    // Capacity bound with arrivals: 2 peers from 0, a third from 150 s; 600 s of work -> T = (600 + 150) / 3 = 250 s.
    expect(report.cohorts[0]!.lowerBoundMs).toBe(sec(250));
  });

  it('peers with different source states form separate cohorts; stacked (dependent) changes share one', () => {
    const schema = flatSchema(3);
    const durationsMs = new Map(schema.steps.map((s) => [s.id, sec(30)]));
    const reg = (pipelineType: 'independent' | 'dependent', patchsets: string[]) => simRegistration({ pipelineType, patchsets });
    const workload: SimWorkload = {
      name: 'mixed',
      schema,
      durationsMs,
      jitter: 0,
      seed: 1,
      seedDurations: false,
      peers: [
        { peerId: 'pr1-a', arrivalMs: 0, registration: reg('independent', ['refs/changes/1']) },
        { peerId: 'pr1-b', arrivalMs: 0, registration: reg('independent', ['refs/changes/1']) },
        { peerId: 'pr2-a', arrivalMs: 0, registration: reg('independent', ['refs/changes/2']) },
        { peerId: 'gate-3', arrivalMs: 0, registration: reg('dependent', ['refs/changes/3']) },
        { peerId: 'gate-4', arrivalMs: sec(5), registration: reg('dependent', ['refs/changes/3', 'refs/changes/4']) },
      ],
    };
    const report = simulate(workload);
    expect(report.cohorts.map((c) => c.members.map((m) => m.peerId))).toEqual([['pr1-a', 'pr1-b'], ['pr2-a'], ['gate-3', 'gate-4']]);
    expect(report.uniqueWorkMs).toBe(3 * sec(90));
    expect(report.summaries[0]!.executedOverUnique).toBe(1);
  });
});
