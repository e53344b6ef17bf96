import { describe, expect, it } from 'vitest';
import type { CompleteSummary } from '../../shared/protocol.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';

/**
 * The `complete` summary in two units, computed by hand: build time (what this
 * peer built, what others spared it) and runner time (join to complete, waiting
 * included) against building every step alone, which can be negative.
 */
const sec = (s: number): number => s * 1000;

function summaryOf(h: CoreHarness, peerId: string): CompleteSummary {
  const complete = h.sent(peerId).find((m) => m.type === 'complete');
  if (complete?.type !== 'complete') throw new Error(`${peerId} got no complete`);
  return complete.summary;
}

describe('complete summary: build time and runner time', () => {
  it('a 10 s -> 20 s chain, p2 joining 5 s after p1: both wait for the chain, and save what they did not wait', () => {
    const h = new CoreHarness(dagSchema({ a: [], b: ['a'] }, { a: 10, b: 20 }));
    h.hello('p1');
    const a = h.lastAssign('p1')!;
    expect(a.stepId).toBe('a');
    h.clock.advance(sec(5));
    h.hello('p2');
    h.clock.advance(sec(5));
    h.finish('p1', a.leaseId, 'a', true, { durationMs: sec(10) });
    const builder = h.lastAssign('p1')?.stepId === 'b' ? 'p1' : 'p2';
    const b = h.lastAssign(builder)!;
    expect(b.stepId).toBe('b');
    h.clock.advance(sec(20));
    h.finish(builder, b.leaseId, 'b', true, { durationMs: sec(20) });
    // Complete at t = 30 s. Alone: 10 + 20 = 30 s. p1 spent 30 s (saved 0), p2 joined at 5 s and spent 25 s (saved 5 s).
    const p1 = summaryOf(h, 'p1');
    const p2 = summaryOf(h, 'p2');
    expect([p1.aloneSec, p1.spentSec, p2.aloneSec, p2.spentSec]).toEqual([30, 30, 30, 25]);
    expect(p1.builtSec! + p2.builtSec!).toBe(30);
    expect(p1.builtSec! + p1.savedSec).toBe(30);
    expect(p2.builtSec! + p2.savedSec).toBe(30);
  });

  it('waiting out a failed attempt costs more runner time than building alone: the saving is negative', () => {
    const h = new CoreHarness(dagSchema({ s1: [], s2: [] }, { s1: 10, s2: 10 }));
    h.hello('p1');
    h.hello('p2');
    const first = h.lastAssign('p1')!;
    const second = h.lastAssign('p2')!;
    h.clock.advance(sec(10));
    h.finish('p1', first.leaseId, first.stepId, true, { durationMs: sec(10) });
    // p2's step fails after 50 s and is retried on p1, which builds it in 10 s.
    h.clock.advance(sec(40));
    h.finish('p2', second.leaseId, second.stepId, false, { exitCode: 1, durationMs: sec(50) });
    const retry = h.lastAssign('p1')!;
    expect(retry.stepId).toBe(second.stepId);
    h.clock.advance(sec(10));
    h.finish('p1', retry.leaseId, retry.stepId, true, { durationMs: sec(10) });
    for (const p of ['p1', 'p2']) {
      const s = summaryOf(h, p);
      // Alone: 10 + 10 s of measured builds; spent: 60 s: 40 s worse than building alone.
      expect([s.aloneSec, s.spentSec]).toEqual([20, 60]);
      expect(s.aloneSec! - s.spentSec!).toBe(-40);
    }
    expect(summaryOf(h, 'p1').builtSec).toBe(20);
    expect(summaryOf(h, 'p2').builtSec).toBe(0);
  });

  it('counts both units in the metrics stats: runner time spent and alone per peer told complete', () => {
    const h = new CoreHarness(dagSchema({ a: [] }, { a: 10 }));
    h.hello('p1');
    h.clock.advance(sec(4));
    h.hello('p2');
    h.clock.advance(sec(6));
    const a = h.lastAssign('p1')!;
    const out = h.finish('p1', a.leaseId, 'a', true, { durationMs: sec(10) });
    const stats = out.effects.filter((e) => e.kind === 'stat').map((e) => (e.kind === 'stat' ? [e.stat, e.value] : null));
    expect(stats).toContainEqual(['seconds.saved', 10]);
    expect(stats.filter((s) => s![0] === 'runner.spent').map((s) => s![1] as number).sort((x, y) => x - y)).toEqual([6, 10]);
    expect(stats.filter((s) => s![0] === 'runner.alone').map((s) => s![1])).toEqual([10, 10]);
  });
});
