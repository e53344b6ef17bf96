import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeServerMessage } from '../../shared/frames.js';
import type { Assign, ServerMessage, StepUpdate } from '../../shared/protocol.js';
import { expandCoalesced } from '../../peer/coalesced-updates.js';
import { coalesceWindowMs, UpdateCoalescer, withSucceeded } from '../../server/http/update-coalescer.js';

const cohortId = 'c_1';
const success = (stepId: string, peerId = 'p2'): StepUpdate => ({ type: 'step.update', cohortId, stepId, state: 'succeeded', peerId, fromMemo: false, durationMs: 5 });
const assign = (stepId: string): Assign => ({ type: 'assign', cohortId, stepId, leaseId: `l_${stepId}`, attempt: 1, backup: false });
const wait: ServerMessage = { type: 'wait', cohortId, running: [{ stepId: 's9', peerId: 'p3' }], unresolved: 2 };

function harness(enabled: boolean) {
  const sent: ServerMessage[] = [];
  const out = {
    write(text: string): void {
      const decoded = decodeServerMessage(text);
      if (!decoded.ok) throw new Error(`the coalescer sent an invalid frame: ${decoded.problem}`);
      sent.push(decoded.message);
    },
  };
  const c = new UpdateCoalescer(out, (m) => JSON.stringify(m));
  c.enable(enabled);
  return { c, sent };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('UpdateCoalescer (server side of coalescedUpdates)', () => {
  it('without coalescedUpdates every frame goes out as rendered, one step.update per success', () => {
    const { c, sent } = harness(false);
    c.deliver(assign('s1'));
    c.deliver(success('s2'));
    c.deliver(success('s3'));
    c.deliver(assign('s4'));
    expect(sent.map((m) => m.type)).toEqual(['assign', 'step.update', 'step.update', 'assign']);
  });

  it('a busy peer gets successes on its next assign, in order, and nothing in between', () => {
    const { c, sent } = harness(true);
    c.deliver(assign('s1'));
    c.deliver(success('s2'));
    c.deliver(success('s3', 'p1'));
    expect(sent).toHaveLength(1);
    c.deliver(assign('s4'));
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual({ ...assign('s4'), succeeded: [{ stepId: 's2', peerId: 'p2', fromMemo: false, durationMs: 5 }, { stepId: 's3', peerId: 'p1', fromMemo: false, durationMs: 5 }] });
    c.dispose();
  });

  it('a waiting peer gets successes batched too; failures go out at once behind held successes', () => {
    const { c, sent } = harness(true);
    c.deliver(wait);
    c.deliver(success('s2'));
    expect(sent.map((m) => m.type)).toEqual(['wait']);
    c.deliver(assign('s5'));
    c.deliver(success('s6'));
    c.deliver({ type: 'step.update', cohortId, stepId: 's7', state: 'failed', peerId: 'p2', fromMemo: false, exitCode: 1 });
    expect(sent.slice(1)).toEqual([
      { ...assign('s5'), succeeded: [{ stepId: 's2', peerId: 'p2', fromMemo: false, durationMs: 5 }] },
      { type: 'step.updates', cohortId, succeeded: [{ stepId: 's6', peerId: 'p2', fromMemo: false, durationMs: 5 }] },
      expect.objectContaining({ stepId: 's7', state: 'failed' }),
    ]);
    c.dispose();
  });

  it('held successes go out as one step.updates frame when no assign, wait or complete comes within the window', () => {
    vi.useFakeTimers();
    const { c, sent } = harness(true);
    c.deliver(assign('s1'));
    c.deliver(success('s2'));
    c.deliver(success('s3'));
    vi.advanceTimersByTime(coalesceWindowMs - 1);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sent[1]).toEqual({ type: 'step.updates', cohortId, succeeded: [expect.objectContaining({ stepId: 's2' }), expect.objectContaining({ stepId: 's3' })] });
    c.deliver(assign('s4'));
    expect(sent[2]).toEqual(assign('s4'));
  });

  it('after dispose nothing more goes out', () => {
    vi.useFakeTimers();
    const { c, sent } = harness(true);
    c.deliver(assign('s1'));
    c.deliver(success('s2'));
    c.dispose();
    vi.advanceTimersByTime(coalesceWindowMs * 2);
    expect(sent).toHaveLength(1);
  });
});

describe('expandCoalesced (peer side)', () => {
  it('turns batched successes back into the step.update frames an authority without batching sends, then the frame itself', () => {
    const batched: ServerMessage = { ...assign('s4'), succeeded: [{ stepId: 's2', peerId: 'p2', fromMemo: false, durationMs: 5 }, { stepId: 's3', peerId: null, fromMemo: true }] };
    expect(expandCoalesced(batched)).toEqual([success('s2'), { type: 'step.update', cohortId, stepId: 's3', state: 'succeeded', peerId: null, fromMemo: true }, assign('s4')]);
    expect(expandCoalesced({ type: 'step.updates', cohortId, succeeded: [{ stepId: 's2', peerId: 'p2', fromMemo: false, durationMs: 5 }] })).toEqual([success('s2')]);
    expect(expandCoalesced(wait)).toEqual([wait]);
  });

  it('an assign or wait carrying successes is exactly the text of JSON.stringify({ ...message, succeeded })', () => {
    const texts: string[] = [];
    const c = new UpdateCoalescer({ write: (text: string) => void texts.push(text) }, (m) => JSON.stringify(m));
    c.enable(true);
    const held = [success('s2'), { ...success('s3', 'p"1\u2028'), durationMs: undefined, fromMemo: true }];
    for (const message of [assign('s4'), wait]) {
      for (const h of held) c.deliver(h as StepUpdate);
      c.deliver(message);
    }
    const entries = [{ stepId: 's2', peerId: 'p2', fromMemo: false, durationMs: 5 }, { stepId: 's3', peerId: 'p"1\u2028', fromMemo: true }];
    expect(texts).toEqual([JSON.stringify({ ...assign('s4'), succeeded: entries }), JSON.stringify({ ...wait, succeeded: entries })]);
    expect(withSucceeded('{"type":"wait"}', [])).toBe(JSON.stringify({ type: 'wait', succeeded: [] }));
    c.dispose();
  });
});
