import { describe, expect, it } from 'vitest';
import { RunRecord } from '../../peer/run-record.js';
import type { StepRun } from '../../peer/step-runner.js';

/**
 * The peer's `--report` record with targeted updates: a busy peer is not told of others' successes
 * as they happen, so `complete`'s summary fills in who built what.
 */
describe('RunRecord', () => {
  it('takes the steps others built, and those from memo, from complete when no step.update named them', () => {
    const steps = ['a', 'b', 'c', 'd'].map((id) => ({ id, target: `//${id}/...`, needs: [] }));
    let now = 0;
    const record = new RunRecord(steps, 'p1', () => now);
    record.frame({ type: 'welcome', protocol: 1, peerId: 'p1', resumeToken: 'rt_1', resumed: false, cohort: { id: 'c1', peers: 3, steps: 4, resolved: 0, succeeded: [] }, pingIntervalMs: 15_000 });
    record.frame({ type: 'assign', cohortId: 'c1', stepId: 'a', leaseId: 'l1', attempt: 1, backup: false });
    record.stepStarted();
    now = 1_000;
    const run: StepRun = { ok: true, exitCode: 0, logTail: undefined, durationMs: 1_000, aborted: false, startError: null, unpublished: null };
    record.stepSettled('a', run);
    // Heard while waiting: d, with its duration.
    record.frame({ type: 'step.update', cohortId: 'c1', stepId: 'd', state: 'succeeded', peerId: 'p3', fromMemo: false, durationMs: 700 });
    record.frame({
      type: 'complete',
      cohortId: 'c1',
      outcome: 'succeeded',
      summary: { builtHere: ['a'], builtByOthers: [{ stepId: 'b', peerId: 'p2', durationMs: 400 }, { stepId: 'd', peerId: 'p3', durationMs: 700 }], fromMemo: ['c'], failed: [], savedSec: 3 },
    });
    const json = record.toJson({ version: '0', peerId: 'p1', labels: [], schema: { id: 's', digest: 'sha256:x' }, source: null, mode: 'shared', exitCode: 0, finalLine: '', failOpen: null, universe: null, savedSec: 3 });
    expect(json.steps.map((s) => [s.stepId, s.outcome, s.builtBy, s.builtHere, s.fromMemo, s.durationMs])).toEqual([
      ['a', 'succeeded', 'p1', true, false, 1_000],
      ['b', 'succeeded', 'p2', false, false, 400],
      ['c', 'succeeded', null, false, true, null],
      ['d', 'succeeded', 'p3', false, false, 700],
    ]);
    expect(json.totals).toMatchObject({ steps: 4, builtHere: 1, builtByOthers: 2, fromMemo: 1, failed: 0 });
  });
});
