import { describe, expect, it } from 'vitest';
import { describeStepFailure, type StepFailCause } from '../../server/core/causes.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';

describe('step failure', () => {
  it('retries once on a different peer, then fails the step for the cohort and tells every peer at once', () => {
    const h = new CoreHarness(dagSchema({ bad: [], b: [], c: [] }, { bad: 100, b: 10, c: 5 }));
    h.hello('p1');
    h.hello('p2');
    h.hello('p3');
    expect(h.lastAssign('p1')!.stepId).toBe('bad');
    // p1 fails "bad": it must not get it back while p2 or p3 could take it.
    const first = h.finish('p1', h.lastAssign('p1')!.leaseId, 'bad', false, { exitCode: 3, logTail: 'first' });
    const retrying = {
      type: 'step.update',
      cohortId: 'c1',
      stepId: 'bad',
      state: 'pending',
      peerId: 'p1',
      fromMemo: false,
      exitCode: 3,
      logTail: 'first',
      reason: 'attempt 1 failed on p1 with exit 3; retrying, on another peer when there is one',
    };
    expect(messagesIn(first, h.conns.get('p1')!)).toEqual([retrying, { type: 'wait', cohortId: 'c1', running: [{ stepId: 'b', peerId: 'p2', heldMs: 1000 }, { stepId: 'c', peerId: 'p3', heldMs: 1000 }], unresolved: 3 }]); // finish() moves the clock to lease start + its 1 s
    expect(messagesIn(first, h.conns.get('p3')!)).toEqual([retrying]);
    // The retry comes before anything else: the next idle peer (p2) gets it.
    h.finish('p2', h.lastAssign('p2')!.leaseId, 'b');
    expect(h.lastAssign('p2')).toMatchObject({ stepId: 'bad', attempt: 2 });
    const second = h.finish('p2', h.lastAssign('p2')!.leaseId, 'bad', false, { exitCode: 4, logTail: 'error: boom' });
    const failure = {
      type: 'step.update',
      cohortId: 'c1',
      stepId: 'bad',
      state: 'failed',
      peerId: 'p2',
      fromMemo: false,
      exitCode: 4,
      logTail: 'error: boom',
      reason: 'failed 2 times; last on p2 with exit 4',
    };
    for (const p of ['p1', 'p2', 'p3']) expect(messagesIn(second, h.conns.get(p)!)).toContainEqual(failure);
    h.finish('p3', h.lastAssign('p3')!.leaseId, 'c');
    const complete = h.sent('p1').find((m) => m.type === 'complete');
    expect(complete).toEqual({
      type: 'complete',
      cohortId: 'c1',
      outcome: 'failed',
      summary: {
        builtHere: [],
        builtByOthers: [{ stepId: 'b', peerId: 'p2' }, { stepId: 'c', peerId: 'p3' }],
        fromMemo: [],
        failed: [{ stepId: 'bad', peerId: 'p2', exitCode: 4, logTail: 'error: boom', reason: 'failed 2 times; last on p2 with exit 4' }],
        savedSec: 2,
        // Build time: p1 built nothing; alone it would build b, c (1 s each, measured) and bad (its 100 s estimate).
        builtSec: 0,
        aloneSec: 102,
        // Joined at 0; the last report came 2 s later (each report at least 1 s after its lease started).
        spentSec: 2,
      },
    });
  });

  it('retries on the same peer when it is the only one', () => {
    const h = new CoreHarness(dagSchema({ bad: [] }));
    h.hello('solo');
    h.finish('solo', h.lastAssign('solo')!.leaseId, 'bad', false);
    expect(h.lastAssign('solo')).toMatchObject({ stepId: 'bad', attempt: 2 });
  });

  it('fails every step that needs a failed step, without running it', () => {
    const h = new CoreHarness(dagSchema({ a: [], b: ['a'], c: ['b'], d: [] }), { maxFailures: 1 });
    h.hello('p1');
    h.hello('p2');
    const out = h.finish('p1', h.lastAssign('p1')!.leaseId, 'a', false);
    const failed = out.writes.flatMap((w) => (w.table === 'step' && w.row.status === 'failed' ? [[w.row.stepId, w.row.failCause]] : []));
    expect(failed).toEqual([
      ['a', { kind: 'attempts-exhausted', failures: 1, peerId: 'p1', exitCode: 1 }],
      ['b', { kind: 'need-failed', need: 'a' }],
      ['c', { kind: 'need-failed', need: 'b' }],
    ]);
    expect(failed.map(([, cause]) => describeStepFailure(cause as StepFailCause))).toEqual([
      'failed 1 times; last on p1 with exit 1',
      'needs "a", which failed',
      'needs "b", which failed',
    ]);
  });

  it('a failure while a backup copy still runs waits for that copy', () => {
    const h = new CoreHarness(dagSchema({ slow: [] }, { slow: 1 }), { maxFailures: 1 });
    h.hello('p1');
    h.hello('p2');
    h.advance(30_000);
    expect(h.lastAssign('p2')).toMatchObject({ backup: true });
    const out = h.finish('p1', h.lastAssign('p1')!.leaseId, 'slow', false);
    expect(out.writes.some((w) => w.table === 'step' && w.row.status === 'failed')).toBe(false);
    h.finish('p2', h.lastAssign('p2')!.leaseId, 'slow');
    expect(h.sent('p1').find((m) => m.type === 'complete')).toMatchObject({ outcome: 'succeeded' });
  });

  it('a poison step that loses its peer every time fails after maxLostLeases, with the reason recorded', () => {
    const h = new CoreHarness(dagSchema({ poison: [] }), { maxLostLeases: 3 });
    for (let i = 1; i <= 3; i++) {
      h.hello(`p${i}`);
      expect(h.lastAssign(`p${i}`)).toMatchObject({ stepId: 'poison', attempt: i });
      h.disconnect(`p${i}`);
      h.advance(60_000);
    }
    const step = h.writes.filter((w) => w.table === 'step').pop();
    expect(step?.table === 'step' && step.row).toMatchObject({
      status: 'failed',
      lostLeases: 3,
      failCause: { kind: 'lost-too-often', lostLeases: 3, last: 'grace-expired' },
    });
    expect(step?.table === 'step' && step.row.failCause && describeStepFailure(step.row.failCause)).toBe(
      'lost its peer 3 times (last: grace period expired); the step may be killing its peer',
    );
    // Not retried forever: the failed cohort takes no new peer; a newcomer starts a fresh cohort.
    h.hello('p4');
    expect(h.lastAssign('p4')).toMatchObject({ cohortId: 'c2', attempt: 1 });
    expect(h.effects.filter((e) => e.kind === 'granted' && e.cohortId === 'c1')).toHaveLength(3);
  });
});
