import { describe, expect, it } from 'vitest';
import type { CoreOutput } from '../../server/core/core-types.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/**
 * `targetedUpdates` (hello): a member hears another step's success only while it waits, and the
 * success of the step it built; failures and reopened steps still reach every working member; members
 * without the field hear every success as before.
 */

/** Who a commit told about each step's change, by peer: `{ s1: ['p1', 'p3'] }`, with the state. */
function toldOf(h: CoreHarness, out: CoreOutput): Record<string, { state: string; to: string[] }> {
  const peerOf = new Map([...h.conns].map(([peerId, connId]) => [connId, peerId]));
  const told: Record<string, { state: string; to: string[] }> = {};
  for (const e of out.effects) if (e.kind === 'step-changed') told[e.change.stepId] = { state: e.change.state, to: e.connIds.map((c) => peerOf.get(c)!) };
  return told;
}

describe('targeted updates', () => {
  it('a busy member does not hear others succeed; the builder and the waiting members do', () => {
    const h = new CoreHarness(flatSchema(4));
    for (const p of ['p1', 'p2', 'p3']) h.hello(p, { targetedUpdates: true });
    const [l1, l2, l3] = ['p1', 'p2', 'p3'].map((p) => h.lastAssign(p)!);
    // p1 built s1; p2 and p3 are busy: only p1 hears (the acknowledgement), and p1 gets s4.
    const first = h.finish('p1', l1!.leaseId, l1!.stepId);
    expect(toldOf(h, first)).toEqual({ s1: { state: 'succeeded', to: ['p1'] } });
    expect(messagesIn(first, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update', 'assign']);
    // p2 built s2 and has nothing left to take: it waits.
    const second = h.finish('p2', l2!.leaseId, l2!.stepId);
    expect(toldOf(h, second)).toEqual({ s2: { state: 'succeeded', to: ['p2'] } });
    expect(messagesIn(second, h.conns.get('p2')!).map((m) => m.type)).toEqual(['step.update', 'wait']);
    // While p2 waits it hears every success in the cohort.
    const third = h.finish('p3', l3!.leaseId, l3!.stepId);
    expect(toldOf(h, third)).toEqual({ s3: { state: 'succeeded', to: ['p2', 'p3'] } });
  });

  it('members without the field hear every success, next to targeted ones', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('old');
    h.hello('new', { targetedUpdates: true });
    h.hello('old2');
    const lease = h.lastAssign('old2')!;
    expect(toldOf(h, h.finish('old2', lease.leaseId, lease.stepId))).toEqual({ [lease.stepId]: { state: 'succeeded', to: ['old', 'old2'] } });
  });

  it('a failure and a reopened step reach every working member, busy or not', () => {
    const h = new CoreHarness(flatSchema(3), { maxFailures: 2 });
    for (const p of ['p1', 'p2', 'p3']) h.hello(p, { targetedUpdates: true });
    const l1 = h.lastAssign('p1')!;
    // First failure: the step is reopened (leased again); every member hears why.
    const retry = h.finish('p1', l1.leaseId, l1.stepId, false, { exitCode: 2 });
    expect(toldOf(h, retry)).toEqual({ s1: { state: 'pending', to: ['p1', 'p2', 'p3'] } });
    // The retry prefers another peer: p1 waits (and so hears p2's success), p2 takes s1 next.
    expect(h.sent('p1').at(-1)).toMatchObject({ type: 'wait' });
    const l2 = h.lastAssign('p2')!;
    expect(toldOf(h, h.finish('p2', l2.leaseId, l2.stepId))).toEqual({ s2: { state: 'succeeded', to: ['p1', 'p2'] } });
    const again = h.lastAssign('p2')!;
    expect(again).toMatchObject({ stepId: 's1', attempt: 2 });
    // Failed for the cohort: p3, busy with s3, hears it at once too.
    const failed = h.finish('p2', again.leaseId, 's1', false, { exitCode: 2 });
    expect(toldOf(h, failed)).toEqual({ s1: { state: 'failed', to: ['p1', 'p2', 'p3'] } });
  });

  it('a resume takes the flag of its hello; the index follows wait, assign, drop and complete', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1', { targetedUpdates: true });
    h.hello('p2', { targetedUpdates: true });
    h.hello('p3', { targetedUpdates: true });
    expect(h.sent('p3').at(-1)).toMatchObject({ type: 'wait' });
    // p3 reconnects as an old peer would (no flag): it hears every success again.
    h.disconnect('p3');
    h.resume('p3', null);
    const l1 = h.lastAssign('p1')!;
    expect(toldOf(h, h.finish('p1', l1.leaseId, l1.stepId))).toEqual({ s1: { state: 'succeeded', to: ['p1', 'p3'] } });
    // p2 builds the last step: p1 and p3 are waiting or done; nobody told `complete` hears it.
    const l2 = h.lastAssign('p2')!;
    const last = h.finish('p2', l2.leaseId, l2.stepId);
    expect(toldOf(h, last)).toEqual({ s2: { state: 'succeeded', to: ['p1', 'p2', 'p3'] } });
    expect(messagesIn(last, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update', 'complete']);
  });
});
