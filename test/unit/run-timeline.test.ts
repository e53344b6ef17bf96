import { describe, expect, it } from 'vitest';
import type { CohortRun, RunLease, RunStep } from '../../server/http/run-reader.js';
import { cohortOutcome, criticalPath, outcomeName, runTimeline } from '../../server/http/run-timeline.js';
import { trendRows } from '../../server/http/run-trends.js';
import { traceOf } from '../../server/http/trace-export.js';
import { cohortPageUrl } from '../../shared/dashboard-url.js';

const t0 = 1_000_000;

function step(stepId: string, over: Partial<RunStep> = {}): RunStep {
  return {
    stepId,
    target: `//${stepId}/...`,
    needs: [],
    estimateSec: null,
    status: 'succeeded',
    attempts: 1,
    builtBy: null,
    fromMemo: false,
    durationMs: null,
    failCause: null,
    failReason: null,
    failPeerId: null,
    failExitCode: null,
    failLogTail: null,
    resolvedAtMs: null,
    ...over,
  };
}

let leaseNo = 0;
function lease(stepId: string, peerId: string, start: number, end: number | null, outcome: RunLease['outcome'], over: Partial<RunLease> = {}): RunLease {
  return { leaseId: `l${++leaseNo}`, stepId, peerId, attempt: 1, backup: false, startedAtMs: t0 + start, endedAtMs: end === null ? null : t0 + end, end: outcome === null ? null : { kind: 'unrecorded', outcome }, outcome, ...over };
}

/** a, then b (needs a), and c: p1 builds a and b; p2 fails c, then its backup copy of b is aborted; p3 builds c on the retry. */
function run(over: Partial<CohortRun['cohort']> = {}, extraEvents: CohortRun['events'] = []): CohortRun {
  return {
    cohort: { cohortId: 'c_1', schemaId: 'demo', repo: 'r', baseRef: 'main', cohortKey: null, pipelineType: 'independent', patchsets: [], status: 'complete', createdAtMs: t0, resolvedAtMs: t0 + 900, secondsSaved: 1.2, universe: '//...', storedOutcome: { kind: 'succeeded' }, ...over },
    steps: [step('a', { builtBy: 'p1' }), step('b', { needs: ['a'], builtBy: 'p1' }), step('c', { builtBy: 'p3', attempts: 2 })],
    leases: [
      lease('a', 'p1', 0, 300, 'succeeded'),
      lease('c', 'p2', 50, 150, 'failed'),
      lease('c', 'p3', 200, 400, 'succeeded', { attempt: 2 }),
      lease('b', 'p1', 300, 900, 'succeeded'),
      lease('b', 'p2', 700, 900, 'aborted', { attempt: 2, backup: true }),
    ],
    peers: [
      { peerId: 'p1', status: 'left', joinedAtMs: t0, pipelineName: 'check', changeRef: null, ciJobUrl: null },
      { peerId: 'p2', status: 'left', joinedAtMs: t0 + 50, pipelineName: 'check', changeRef: null, ciJobUrl: null },
      { peerId: 'p3', status: 'connected', joinedAtMs: t0 + 100, pipelineName: 'check', changeRef: null, ciJobUrl: null },
    ],
    events: [
      { atMs: t0 + 1000, kind: 'peer.left', stepId: null, peerId: 'p1', detail: null },
      { atMs: t0 + 950, kind: 'peer.left', stepId: null, peerId: 'p2', detail: null },
      ...extraEvents,
    ],
  };
}

describe('runTimeline', () => {
  it('one lane per peer with each lease as a bar, waits in the gaps, the universe after completion', () => {
    const t = runTimeline(run(), t0 + 1200);
    expect(t.outcome).toBe('succeeded');
    const bars = (peerId: string) => t.lanes.find((l) => l.peerId === peerId)!.bars.map((b) => [b.kind, b.stepId, b.startMs - t0, b.endMs - t0, b.open]);
    expect(bars('p1')).toEqual([
      ['built', 'a', 0, 300, false],
      ['built', 'b', 300, 900, false],
      ['universe', null, 900, 1000, false],
    ]);
    expect(bars('p2')).toEqual([
      ['failed', 'c', 50, 150, false],
      ['wait', null, 150, 700, false],
      ['aborted', 'b', 700, 900, false],
      ['universe', null, 900, 950, false],
    ]);
    // p3 is still connected: its universe build is open and runs to now.
    expect(bars('p3')).toEqual([
      ['wait', null, 100, 200, false],
      ['built', 'c', 200, 400, false],
      ['wait', null, 400, 900, false],
      ['universe', null, 900, 1200, true],
    ]);
    const p2 = t.lanes.find((l) => l.peerId === 'p2')!.bars;
    expect(p2.find((b) => b.kind === 'aborted')).toMatchObject({ backup: true, retried: false });
    expect(t.lanes.find((l) => l.peerId === 'p3')!.bars.find((b) => b.kind === 'built')).toMatchObject({ retried: true, attempt: 2 });
  });

  it('a reported universe build is drawn as reported; one not reported is inferred and marked so', () => {
    // p1 reported a build from 1020 to 1400 (after it left the cohort at 1000); p2 reported a failure; p3 did not report.
    const reported = run({}, [
      { atMs: t0 + 1400, kind: 'universe.built', stepId: null, peerId: 'p1', detail: JSON.stringify({ startedAtMs: t0 + 1020, ok: true, exitCode: 0 }) },
      { atMs: t0 + 1100, kind: 'universe.built', stepId: null, peerId: 'p2', detail: JSON.stringify({ startedAtMs: t0 + 960, ok: false, exitCode: 2 }) },
    ]);
    const t = runTimeline(reported, t0 + 1500);
    const universe = (peerId: string) => t.lanes.find((l) => l.peerId === peerId)!.bars.find((b) => b.kind === 'universe')!;
    expect(universe('p1')).toMatchObject({ startMs: t0 + 1020, endMs: t0 + 1400, open: false, inferred: false, ok: true });
    expect(universe('p2')).toMatchObject({ startMs: t0 + 960, endMs: t0 + 1100, inferred: false, ok: false });
    expect(universe('p3')).toMatchObject({ startMs: t0 + 900, endMs: t0 + 1500, open: true, inferred: true, ok: null });
    // The runner is held until the reported build ends; runner time saved counts to its start.
    expect(t.totals.runnerMs).toBe(1400 + (1100 - 50) + (1500 - 100));
    expect(t.totals.savedRunnerSec).toBe((1100 - 1020 + (1100 - 910)) / 1000);
    expect(t.endAtMs).toBe(t0 + 1500);
    // Without reports every universe bar is inferred.
    expect(runTimeline(run(), t0 + 1200).lanes.flatMap((l) => l.bars.filter((b) => b.kind === 'universe').map((b) => b.inferred))).toEqual([true, true, true]);
    const corrupt = run({}, [{ atMs: t0 + 1400, kind: 'universe.built', stepId: null, peerId: 'p1', detail: '{"startedAtMs":"soon"}' }]);
    expect(() => runTimeline(corrupt, t0 + 1500)).toThrow(/corrupt database: cohort c_1's universe.built event of peer p1 has a bad detail/);
  });

  it('the critical path is the longest chain of needs by measured duration, marked on its bars and steps', () => {
    const t = runTimeline(run(), t0 + 1200);
    expect(t.criticalPath).toEqual(['a', 'b']);
    expect(t.steps.filter((s) => s.critical).map((s) => s.stepId)).toEqual(['a', 'b']);
    const critical = t.lanes.flatMap((l) => l.bars.filter((b) => b.critical).map((b) => `${l.peerId}:${b.stepId}`));
    expect(critical).toEqual(['p1:a', 'p1:b']); // the aborted backup of b is not
    expect(criticalPath([step('x'), step('y')], [], t0)).toEqual([]); // nothing measured: no path
  });

  it('totals: build time counts every lease, runner time is peers x wall, savings in both units', () => {
    const t = runTimeline(run(), t0 + 1200);
    expect(t.totals.buildMs).toBe(300 + 100 + 200 + 600 + 200);
    expect(t.totals.runnerMs).toBe(1000 + (950 - 50) + (1200 - 100));
    expect(t.totals.wallMs).toBe(1200);
    expect(t.totals.waitMs).toBe(550 + 100 + 500);
    expect(t.totals.savedBuildSec).toBe(1.2);
    // Every succeeded step once: 300 + 600 + 200 = 1100 ms; p1 reached its universe after 900, p2 after 850 (p3 has not left).
    expect(t.totals.savedRunnerSec).toBe((1100 - 900 + (1100 - 850)) / 1000);
  });

  it('a live lease is an open bar up to now; an open cohort has no outcome and no universe', () => {
    const r = run({ status: 'open', resolvedAtMs: null, storedOutcome: null });
    const live = { ...r, leases: [lease('a', 'p1', 0, null, null)], peers: [r.peers[0]!], events: [] };
    const t = runTimeline(live, t0 + 500);
    expect(t.outcome).toBeNull();
    expect(t.lanes[0]!.bars).toEqual([expect.objectContaining({ kind: 'running', stepId: 'a', endMs: t0 + 500, open: true })]);
    expect(t.totals.savedRunnerSec).toBeNull();
  });

  it('outcome: the recorded outcome of the core; a cancel by the authority itself is abandoned', () => {
    const failed = run({ storedOutcome: { kind: 'failed', failedSteps: 1 } });
    const withFailure = { ...failed, steps: [...failed.steps.slice(0, 2), step('c', { status: 'failed', failReason: 'failed 2 times', failPeerId: 'p2', failExitCode: 3, failLogTail: 'boom' })] };
    expect(cohortOutcome(withFailure)).toBe('failed');
    expect(runTimeline(withFailure, t0 + 1200).failures).toEqual([{ stepId: 'c', peerId: 'p2', exitCode: 3, reason: 'failed 2 times', logTail: 'boom' }]);
    expect(cohortOutcome(run({ status: 'cancelled', storedOutcome: { kind: 'cancelled', by: 'admin' } }))).toBe('cancelled');
    expect(cohortOutcome(run({ status: 'cancelled', storedOutcome: { kind: 'cancelled', by: 'abandoned' } }))).toBe('abandoned');
    expect(cohortOutcome(run({ status: 'open', storedOutcome: null }))).toBeNull();
    expect(() => cohortOutcome(run({ status: 'complete', storedOutcome: null }))).toThrow('corrupt database: cohort c_1 is complete with no recorded outcome');
    expect(outcomeName(null)).toBeNull();
    expect(outcomeName({ kind: 'succeeded' })).toBe('succeeded');
  });
});

describe('traceOf', () => {
  it('one thread per peer, a complete event per bar in microseconds from the cohort start', () => {
    const trace = traceOf(runTimeline(run(), t0 + 1200));
    const threads = trace.traceEvents.filter((e) => e.name === 'thread_name').map((e) => [e.tid, e.args?.name]);
    expect(threads).toEqual([
      [1, 'peer p1'],
      [2, 'peer p2'],
      [3, 'peer p3'],
    ]);
    const p1 = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1).map((e) => [e.name, e.cat, e.ts, e.dur]);
    expect(p1).toEqual([
      ['a', 'built', 0, 300_000],
      ['b', 'built', 300_000, 600_000],
      ['universe //...', 'universe', 900_000, 100_000],
    ]);
    expect(trace.traceEvents.at(-1)).toMatchObject({ ph: 'i', name: 'cohort succeeded', ts: 1_200_000 });
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
  });
});

describe('trendRows', () => {
  it('groups runs per schema and UTC day', () => {
    const day = Date.UTC(2026, 10, 29, 12);
    const a = runTimeline(run({ createdAtMs: day, resolvedAtMs: day + 900 }), day + 2000);
    const rows = trendRows([a, a]);
    expect(rows).toEqual([{ schemaId: 'demo', day: '2026-11-29', runs: 2, stepsBuilt: 6, stepsReused: 0, savedBuildSec: 2.4, savedRunnerSec: expect.any(Number), runnerSec: Math.round((2 * a.totals.runnerMs) / 100) / 10, failed: 0, abandoned: 0 }]);
  });
});

describe('cohortPageUrl', () => {
  it('turns the peer socket URL into the cohort page URL', () => {
    expect(cohortPageUrl('ws://127.0.0.1:8080/v1/peer', 'c_1')).toBe('http://127.0.0.1:8080/cohorts/c_1');
    expect(cohortPageUrl('wss://ci.example/taskshard/v1/peer', 'c_2')).toBe('https://ci.example/taskshard/cohorts/c_2');
    expect(cohortPageUrl('wss://user:pw@ci.example/v1/peer?x=1', 'c:3')).toBe('https://ci.example/cohorts/c%3A3');
  });
});
