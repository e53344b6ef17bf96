import { beforeEach, describe, expect, it } from 'vitest';
import { encodeComplete, resetCompleteEncoder } from '../../server/http/complete-encoder.js';
import { decodeServerMessage } from '../../shared/frames.js';
import type { Complete } from '../../shared/protocol.js';

/**
 * `encodeComplete` (server/http/complete-encoder.ts) must give exactly the text `JSON.stringify`
 * gives, whatever it kept from earlier frames: every member of a cohort, members of cohorts
 * interleaved, lists with and without durations, a kept list gone stale.
 */

/** A deterministic pseudo-random source (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Step {
  readonly stepId: string;
  readonly builtBy: string | null;
  readonly durationMs: number | null;
  readonly status: 'succeeded' | 'failed';
}

/** A cohort's completion: the steps, and each member's `complete` as the core renders it (summary.ts). */
function completion(cohortId: string, stepCount: number, members: number, rnd: () => number): Complete[] {
  const peers = Array.from({ length: members }, (_, i) => `peer-${i}`);
  const steps: Step[] = Array.from({ length: stepCount }, (_, i) => {
    const r = rnd();
    return {
      stepId: `s${i + 1}`,
      builtBy: r < 0.05 ? null : peers[Math.floor(rnd() * members)]!,
      durationMs: rnd() < 0.1 ? null : Math.floor(rnd() * 5000),
      status: r > 0.98 ? 'failed' : 'succeeded',
    };
  });
  return peers.map((peerId, i) => {
    const withDurations = i % 3 !== 0;
    const summary: Complete['summary'] = { builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0 };
    for (const s of steps) {
      if (s.status === 'failed') summary.failed.push({ stepId: s.stepId, peerId: s.builtBy, exitCode: 1, reason: 'failed "here" \\ there' });
      else if (s.builtBy === null) summary.fromMemo.push(s.stepId);
      else if (s.builtBy === peerId) summary.builtHere.push(s.stepId);
      else summary.builtByOthers.push(withDurations && s.durationMs !== null ? { stepId: s.stepId, peerId: s.builtBy, durationMs: s.durationMs } : { stepId: s.stepId, peerId: s.builtBy });
    }
    summary.savedSec = Math.round(rnd() * 1e6) / 1000;
    summary.builtSec = 1.5;
    summary.aloneSec = 12.25;
    summary.spentSec = 3;
    const succeeded = i % 4 === 1 ? [{ stepId: 's1', peerId: 'peer-0', fromMemo: false, durationMs: 3 }] : undefined;
    return { type: 'complete', cohortId, outcome: summary.failed.length > 0 ? 'failed' : 'succeeded', summary, ...(succeeded ? { succeeded } : {}) };
  });
}

beforeEach(() => resetCompleteEncoder());

describe('encodeComplete', () => {
  it('is JSON.stringify for every member of a large cohort, and the frame decodes', () => {
    const frames = completion('c_big', 1000, 40, random(1));
    for (const frame of frames) expect(encodeComplete(frame)).toBe(JSON.stringify(frame));
    const decoded = decodeServerMessage(encodeComplete(frames[5]!));
    expect(decoded).toEqual({ ok: true, message: frames[5] });
  });

  it('is JSON.stringify with cohorts interleaved, small lists, and the first member having built most steps', () => {
    const rnd = random(2);
    const a = completion('c_a', 300, 12, rnd);
    const b = completion('c_b', 500, 7, rnd);
    const small = completion('c_small', 20, 3, rnd);
    const order = [a[0], b[0], a[1], a[2], small[0], b[1], a[3], b[2], ...a.slice(4), ...b.slice(3), ...small.slice(1)];
    for (const frame of order) expect(encodeComplete(frame!)).toBe(JSON.stringify(frame));
    // One member built almost everything: the others' lists are mostly not in its list.
    const lopsided = completion('c_lop', 400, 5, random(3)).map((f, i) =>
      i === 0 ? { ...f, summary: { ...f.summary, builtByOthers: f.summary.builtByOthers.slice(0, 70) } } : f,
    );
    for (const frame of lopsided) expect(encodeComplete(frame)).toBe(JSON.stringify(frame));
  });

  it('a kept list gone stale (same cohort id, other builders and durations) changes nothing but speed', () => {
    const first = completion('c_same', 600, 10, random(4));
    const second = completion('c_same', 600, 10, random(5));
    for (const frame of [first[0]!, ...second, first[1]!]) expect(encodeComplete(frame)).toBe(JSON.stringify(frame));
  });

  it('reordered or repeated entries (not what the core sends) still encode as JSON.stringify', () => {
    const [frame] = completion('c_odd', 200, 3, random(6));
    const list = frame!.summary.builtByOthers;
    encodeComplete(frame!);
    const odd = { ...frame!, summary: { ...frame!.summary, builtByOthers: [...list.slice(100), ...list.slice(0, 100), list[3]!] } };
    expect(encodeComplete(odd)).toBe(JSON.stringify(odd));
  });
});
