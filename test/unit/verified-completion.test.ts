import { describe, expect, it } from 'vitest';
import type { CoreOutput } from '../../server/core/core-types.js';
import { maxUnpublishedAttempts } from '../../server/core/cohort-leases.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';

/** `step.finished` with `unpublished: true`: built, but --verify found it missing from the remote cache. */
function unpublished(h: CoreHarness, peerId: string, stepId: string, exitCode = 1): CoreOutput {
  return h.handle({
    kind: 'finished',
    connId: h.conns.get(peerId)!,
    leaseId: h.lastAssign(peerId)!.leaseId,
    stepId,
    ok: false,
    exitCode,
    durationMs: 1000,
    logTail: 'taskshard: built, but --verify says it is not in the remote cache (exit 1): no artifact',
    unpublished: true,
  });
}

describe('verified completion in the core', () => {
  it('an unpublished step is leased again to another peer and is not counted as a failure', () => {
    const h = new CoreHarness(dagSchema({ a: [], b: [] }, { a: 100, b: 10 }));
    h.hello('p1');
    h.hello('p2');
    expect(h.lastAssign('p1')!.stepId).toBe('a');
    const out = unpublished(h, 'p1', 'a');
    const reason = 'built on p1 but not in the remote cache (--verify exit 1); leasing it again, on another peer when there is one';
    expect(messagesIn(out, h.conns.get('p2')!)).toContainEqual({
      type: 'step.update',
      cohortId: 'c1',
      stepId: 'a',
      state: 'pending',
      peerId: 'p1',
      fromMemo: false,
      exitCode: 1,
      logTail: 'taskshard: built, but --verify says it is not in the remote cache (exit 1): no artifact',
      reason,
    });
    // p1 is idle but must not get "a" back while p2 could take it: p2 gets it after its own step.
    expect(messagesIn(out, h.conns.get('p1')!).filter((m) => m.type === 'assign')).toEqual([]);
    h.finish('p2', h.lastAssign('p2')!.leaseId, 'b');
    expect(h.lastAssign('p2')).toMatchObject({ stepId: 'a', attempt: 2 });
    h.finish('p2', h.lastAssign('p2')!.leaseId, 'a');
    const complete = h.sent('p1').find((m) => m.type === 'complete');
    expect(complete).toMatchObject({ type: 'complete', outcome: 'succeeded', summary: { failed: [], builtByOthers: [{ stepId: 'a', peerId: 'p2' }, { stepId: 'b', peerId: 'p2' }] } });
  });

  it('goes to the same peer when it is the only one, and after too many unpublished ends counts them as failures', () => {
    const h = new CoreHarness(dagSchema({ a: [] }, { a: 10 }));
    h.hello('p1');
    for (let i = 1; i <= maxUnpublishedAttempts; i += 1) {
      expect(h.lastAssign('p1')).toMatchObject({ stepId: 'a', attempt: i });
      unpublished(h, 'p1', 'a');
    }
    // The next unpublished end is a failed attempt (the cache is refusing everything); then the usual retry rule.
    expect(h.lastAssign('p1')).toMatchObject({ stepId: 'a', attempt: maxUnpublishedAttempts + 1 });
    const out = unpublished(h, 'p1', 'a', 7);
    expect(messagesIn(out, h.conns.get('p1')!)).toContainEqual(expect.objectContaining({ type: 'step.update', stepId: 'a', state: 'pending', reason: expect.stringMatching(/^attempt 4 failed on p1 with exit 7; retrying/) }));
    unpublished(h, 'p1', 'a', 7);
    expect(h.sent('p1').find((m) => m.type === 'complete')).toMatchObject({ outcome: 'failed', summary: { failed: [{ stepId: 'a', reason: 'failed 2 times; last on p1 with exit 7' }] } });
  });
});
