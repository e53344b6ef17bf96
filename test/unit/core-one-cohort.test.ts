import { describe, expect, it } from 'vitest';
import type { CoreOutput } from '../../server/core/core-types.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

/**
 * A large cohort's work per input (issue 17): members told `wait` are tried again only when
 * something may be assignable (a ready step, or a live lease old enough for a backup copy), idle
 * members come from an index, active members are counted by an index, and a success reaches many
 * listeners in join order without a sort. What peers are told is what they were told before.
 */

/** Runs the closed loop of the benchmark (each assignment finished at once) until every member is told `complete`. */
function closedLoop(h: CoreHarness, peers: readonly string[]): number {
  let assignments = 0;
  const pending: { peerId: string; leaseId: string; stepId: string }[] = [];
  const take = (out: CoreOutput): void => {
    for (const e of out.effects) {
      if (e.kind !== 'granted') continue;
      assignments++;
      const peerId = [...h.conns].find(([, c]) => c === e.connId)![0];
      pending.push({ peerId, leaseId: e.leaseId, stepId: e.stepId });
    }
  };
  for (const p of peers) take(h.hello(p, { targetedUpdates: true }));
  while (pending.length > 0) {
    const next = pending.shift()!;
    take(h.finish(next.peerId, next.leaseId, next.stepId, true, { durationMs: 0, advance: false }));
  }
  return assignments;
}

describe('one large cohort', () => {
  it('members told wait are not tried again while nothing is assignable; each is told wait once, then complete', () => {
    const h = new CoreHarness(flatSchema(60));
    const peers = Array.from({ length: 40 }, (_, i) => `p${i + 1}`);
    expect(closedLoop(h, peers)).toBe(60);
    // Tried: each hello's joiner and each finisher once (the last 40 finishes find nothing and wait).
    // Trying every waiting member on every finish, as before, made 40 * 39 / 2 more.
    expect(h.scheduler.pickerTries).toBeLessThanOrEqual(60 + 40);
    // Told wait at most once each (all but the one whose finish completed the cohort), then complete.
    const waits = peers.map((p) => h.sent(p).filter((m) => m.type === 'wait').length);
    expect(waits.filter((n) => n === 1)).toHaveLength(39);
    expect(waits.filter((n) => n === 0)).toHaveLength(1);
    for (const p of peers) expect(h.sent(p).at(-1)?.type).toBe('complete');
  });

  it('in a cohort with labelled steps too: waiting members are not tried again while nothing is assignable, and are released once what they could run is resolved', () => {
    // 30 cpu steps anyone can run, then one gpu step: 20 cpu peers and one gpu peer.
    const steps = [...flatSchema(30).steps, { id: 'train', target: '//train/...', needs: ['s30'], requires: ['gpu'] }];
    const h = new CoreHarness({ id: 'labelled', universe: '//...', steps });
    const peers = Array.from({ length: 20 }, (_, i) => `p${i + 1}`);
    for (const p of peers) h.hello(p, { reg: { labels: ['arch:x64'] }, targetedUpdates: true });
    h.hello('gpu1', { reg: { labels: ['arch:x64', 'gpu'] }, targetedUpdates: true });
    let tries = h.scheduler.pickerTries;
    // s1..s21 are leased; s22..s30 go to the first nine finishers; the others wait. Every cpu step but s30 is finished.
    const finished = new Set<string>();
    for (let pass = 0; pass < 2; pass++) {
      for (const p of [...peers, 'gpu1']) {
        const a = h.lastAssign(p)!;
        if (a.stepId === 's30' || finished.has(a.leaseId)) continue;
        finished.add(a.leaseId);
        h.finish(p, a.leaseId, a.stepId, true, { durationMs: 0, advance: false });
      }
    }
    expect(finished.size).toBe(29);
    // Each finisher was tried once; the waiting ones were not tried again on every later finish
    // (the old dispatch tried every available member on each: about 20 * 19 / 2 more).
    expect(h.scheduler.pickerTries - tries).toBeLessThanOrEqual(29);
    const s30 = [...peers, 'gpu1'].find((p) => h.lastAssign(p)?.stepId === 's30')!;
    const lastTold = (p: string): string | undefined => h.sent(p).filter((m) => m.type === 'assign' || m.type === 'wait' || m.type === 'complete').at(-1)?.type;
    const waitingBefore = peers.filter((p) => lastTold(p) === 'wait');
    expect(waitingBefore.length).toBeGreaterThan(5);
    tries = h.scheduler.pickerTries;
    // s30 succeeds: only `train` is left, which needs gpu: every waiting cpu peer is released at once.
    const a = h.lastAssign(s30)!;
    h.finish(s30, a.leaseId, a.stepId, true, { durationMs: 0, advance: false });
    for (const p of waitingBefore) expect(h.sent(p).filter((m) => m.type === 'complete')).toEqual([expect.objectContaining({ summary: expect.objectContaining({ notRunnable: [{ stepId: 'train', requires: ['gpu'] }] }) })]);
    expect(h.sent('gpu1').filter((m) => m.type === 'assign').at(-1)).toMatchObject({ stepId: 'train' });
  });

  it('a waiting member gets a backup copy on any input once the oldest lease is stragglerMinMs old, not a ms before', () => {
    const h = new CoreHarness(dagSchema({ s1: [], s2: [] }, { s1: 1, s2: 1 }), { stragglerFactor: 1, stragglerMinMs: 10_000 });
    h.hello('p1');
    h.hello('p2');
    const s1 = h.lastAssign('p1')!;
    const s2 = h.lastAssign('p2')!;
    const startedAtMs = h.clock.now();
    h.finish('p2', s2.leaseId, s2.stepId, true, { durationMs: 500 });
    expect(h.sent('p2').at(-1)).toMatchObject({ type: 'wait' });
    // One ms before s1's lease is 10 s old (max(1 x 1 s estimate, 10 s)): p3 joins; nobody gets a backup.
    h.clock.set(startedAtMs + 9_999);
    const early = h.hello('p3');
    expect(messagesIn(early, h.conns.get('p2')!)).toEqual([]);
    expect(messagesIn(early, h.conns.get('p3')!).map((m) => m.type)).toEqual(['welcome', 'wait']);
    const triesBefore = h.scheduler.pickerTries;
    // At the edge, the next input touching the cohort (p4's hello, not a tick) backs s1 up: to p2, first in join order.
    h.clock.set(startedAtMs + 10_000);
    const due = h.hello('p4');
    expect(messagesIn(due, h.conns.get('p2')!)).toEqual([expect.objectContaining({ type: 'assign', stepId: s1.stepId, backup: true })]);
    expect(messagesIn(due, h.conns.get('p4')!).map((m) => m.type)).toEqual(['welcome', 'wait']);
    expect(h.scheduler.pickerTries - triesBefore).toBe(3); // p2, p3 and p4 were tried
  });

  it('a success reaches many waiting members in join order, whatever order they started waiting in', () => {
    const h = new CoreHarness(flatSchema(12));
    const peers = Array.from({ length: 12 }, (_, i) => `p${i + 1}`);
    for (const p of peers) h.hello(p, { targetedUpdates: true });
    // p12 .. p2 finish in reverse join order and wait (every step is leased): they hear every success.
    for (const p of peers.slice(1).reverse()) {
      const a = h.lastAssign(p)!;
      h.finish(p, a.leaseId, a.stepId);
    }
    const a1 = h.lastAssign('p1')!;
    const last = h.finish('p1', a1.leaseId, a1.stepId);
    const changed = last.effects.find((e) => e.kind === 'step-changed');
    expect(changed?.kind === 'step-changed' ? changed.connIds : null).toEqual(peers.map((p) => h.conns.get(p)));
  });

  it('the welcome counts active members (connected or in grace) as they drop, come back, expire and leave', () => {
    const h = new CoreHarness(flatSchema(50), { leaseGraceMs: 1_000 });
    const peersIn = (out: CoreOutput, p: string): number | undefined => {
      const welcome = messagesIn(out, h.conns.get(p)!).find((m) => m.type === 'welcome');
      return welcome?.type === 'welcome' ? welcome.cohort.peers : undefined;
    };
    h.hello('p1');
    h.hello('p2');
    h.disconnect('p2'); // in grace: still active
    expect(peersIn(h.hello('p3'), 'p3')).toBe(3);
    h.resume('p2');
    h.disconnect('p2');
    h.advance(1_000); // grace over: gone
    expect(peersIn(h.hello('p4'), 'p4')).toBe(3);
    h.bye('p1');
    expect(peersIn(h.hello('p5'), 'p5')).toBe(3);
    // p2 comes back as a new registration: active again.
    expect(peersIn(h.hello('p2'), 'p2')).toBe(4);
  });
});

describe('why a peer is alone, among many open cohorts', () => {
  it('the base-ref and base-sha reasons look only at open cohorts with the joiner\'s patchsets', () => {
    const visitsWith = (others: number): number => {
      const h = new CoreHarness(flatSchema(3));
      // Open cohorts of other changes (as 1,000 peers in cohorts of 10 make): none is company for the joiner.
      for (let i = 0; i < others; i++) h.hello(`other-${i}`, { reg: { patchsets: [`refs/changes/${100 + i}/1`] } });
      // One open cohort with the joiner's change on another base ref: the one reason there is.
      h.hello('dev', { reg: { baseRef: 'dev', patchsets: ['refs/changes/7/1'] } });
      const before = h.scheduler.matcherVisits;
      h.hello('joiner', { reg: { patchsets: ['refs/changes/7/1'] } });
      const welcome = h.sent('joiner').find((m) => m.type === 'welcome');
      expect(welcome?.type === 'welcome' ? welcome.alone : null).toEqual(['1 peer on the same repo and schema are on base ref dev, yours is main']);
      return h.scheduler.matcherVisits - before;
    };
    // The hello visits as many cohorts with 40 others open as with none (it visited each of them before).
    expect(visitsWith(40)).toBe(visitsWith(0));
  });
});

describe('a peer told complete that resumes on a new connection', () => {
  it('is told complete again (no INTERNAL error, nothing rolled back), its runner time counted once', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    const a = h.lastAssign('p1')!;
    const first = h.finish('p1', a.leaseId, a.stepId);
    expect(messagesIn(first, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update', 'complete']);
    const oldConn = h.conns.get('p1')!;
    // Its socket is still open when it reconnects (it never saw the complete arrive, say) with its resume token.
    const again = h.resume('p1');
    expect(again.fault).toBeNull();
    expect(again.effects.find((e) => e.kind === 'superseded')).toEqual({ kind: 'superseded', connId: oldConn });
    expect(messagesIn(again, h.conns.get('p1')!).map((m) => m.type)).toEqual(['welcome', 'complete']);
    expect(again.effects.filter((e) => e.kind === 'stat' && e.stat.startsWith('runner.'))).toEqual([]);
  });
});
