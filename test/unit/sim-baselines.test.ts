import { describe, expect, it } from 'vitest';
import { simulate } from '../../server/sim/simulate.js';
import { singleCohortWorkload } from '../../server/sim/sim-workload.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

const sec = (s: number): number => s * 1000;

describe('baseline: every peer builds everything', () => {
  it('each peer builds every step itself, in needs order, and is ready after the whole work', () => {
    const schema = dagSchema({ b: ['a'], a: [], c: [] });
    const durationsMs = new Map([['a', sec(10)], ['b', sec(20)], ['c', sec(30)]]);
    const report = simulate(singleCohortWorkload({ name: 'every', schema, peers: 3, durationsMs }));
    const run = report.runs['baseline-every-peer-builds-everything'];
    expect(run.runs.filter((r) => r.peerId === 'p1').map((r) => r.stepId)).toEqual(['a', 'b', 'c']);
    const summary = report.summaries.find((s) => s.policy === 'baseline-every-peer-builds-everything')!;
    expect(summary.executedOverUnique).toBe(3);
    expect(summary.timeToUniverseMs.max).toBe(sec(60));
    expect(summary.timeToUniverseMs.p50).toBe(sec(60));
  });
});

describe('baseline: the original Task Director policy', () => {
  it('pops the last remaining step of the list: schema order reversed, estimates and priorities ignored', () => {
    // s1 is by far the longest (the core starts it first); Task Director hands out s4, s3, s2 first.
    const schema = flatSchema(4);
    const durationsMs = new Map([['s1', sec(400)], ['s2', sec(10)], ['s3', sec(10)], ['s4', sec(10)]]);
    const report = simulate(singleCohortWorkload({ name: 'td', schema, peers: 3, durationsMs, seedDurations: true }));
    const td = report.runs['baseline-task-director'].runs;
    expect(td.map((r) => `${r.peerId}:${r.stepId}@${r.startMs / 1000}`)).toEqual(['p1:s4@0', 'p2:s3@0', 'p3:s2@0', 'p1:s1@10']);
    expect(report.runs.taskshard.runs[0]).toMatchObject({ peerId: 'p1', stepId: 's1', startMs: 0 });
    const tdSummary = report.summaries.find((s) => s.policy === 'baseline-task-director')!;
    const core = report.summaries.find((s) => s.policy === 'taskshard')!;
    expect(tdSummary.timeToUniverseMs.max).toBe(sec(410));
    expect(core.timeToUniverseMs.max).toBe(sec(400));
  });

  it('ignores needs: a step popped before its needs are in the cache makes the peer build them too', () => {
    // Chain a -> b -> c. Two peers: p1 pops c and must build a and b first; p2 pops b and builds a as well.
    const schema = dagSchema({ a: [], b: ['a'], c: ['b'] });
    const durationsMs = new Map([['a', sec(100)], ['b', sec(100)], ['c', sec(100)]]);
    const report = simulate(singleCohortWorkload({ name: 'chain', schema, peers: 2, durationsMs }));
    const td = report.runs['baseline-task-director'].runs.map((r) => `${r.peerId}:${r.stepId}:${r.kind}@${r.startMs / 1000}`);
    expect(td).toEqual(['p1:a:missing-need@0', 'p1:b:missing-need@100', 'p1:c:assigned@200', 'p2:a:missing-need@0', 'p2:b:assigned@100']);
    const tdSummary = report.summaries.find((s) => s.policy === 'baseline-task-director')!;
    // 5 builds of 100 s for 3 unique steps; the last pop (a) is a cache hit and costs nothing.
    expect(tdSummary.executedOverUnique).toBeCloseTo(5 / 3, 10);
    expect(tdSummary.timeToUniverseMs.max).toBe(sec(300));
    const core = report.summaries.find((s) => s.policy === 'taskshard')!;
    expect(core.executedOverUnique).toBe(1);
    expect(core.timeToUniverseMs.max).toBe(sec(300));
  });

  it('a peer that joins when the list is empty waits idle for "schema complete"', () => {
    const schema = flatSchema(2);
    const durationsMs = new Map([['s1', sec(50)], ['s2', sec(500)]]);
    const report = simulate(singleCohortWorkload({ name: 'idle', schema, peers: 3, durationsMs }));
    const td = report.runs['baseline-task-director'];
    expect(td.runs.filter((r) => r.peerId === 'p3')).toEqual([]);
    expect(td.peers.map((p) => p.readyAtMs)).toEqual([sec(500), sec(500), sec(500)]);
  });
});
