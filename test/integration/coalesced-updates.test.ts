import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expandCoalesced } from '../../peer/coalesced-updates.js';
import type { Assign, ServerMessage } from '../../shared/protocol.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
let server: TestServer | null;
const peers: RawPeer[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-coalesce-');
  server = null;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server?.close();
  dir.remove();
});

/** Finishes every assign until `complete`. */
async function work(p: RawPeer): Promise<void> {
  let seen = 0;
  for (;;) {
    const m = await p.waitFor((x) => x.type === 'assign' || x.type === 'complete', seen);
    seen = p.received.indexOf(m) + 1;
    if (m.type === 'complete') return;
    const a = m as Assign;
    p.send({ type: 'step.finished', leaseId: a.leaseId, stepId: a.stepId, ok: true, exitCode: 0, durationMs: 10 });
  }
}

/** Step ids a peer learned succeeded, in the order it learned them, batched or not. */
function learnedSuccesses(received: readonly ServerMessage[]): string[] {
  return received.flatMap(expandCoalesced).flatMap((m) => (m.type === 'step.update' && m.state === 'succeeded' ? [m.stepId] : []));
}

describe('coalescedUpdates: successes batched for peers that ask, unchanged for older peers', () => {
  it('every peer learns every success exactly once; the batching peers get fewer frames, the old peer one step.update per success', async () => {
    server = await startServer({ dbPath: dir.file('c.db') });
    const schema = flatSchema(12);
    const ps = await Promise.all([0, 1, 2].map(async () => {
      const p = await RawPeer.connect(server!.wsUrl);
      peers.push(p);
      return p;
    }));
    ps[0]!.send(helloFor('old-peer', schema));
    ps[1]!.send(helloFor('new-peer-1', schema, { coalescedUpdates: true }));
    ps[2]!.send(helloFor('new-peer-2', schema, { coalescedUpdates: true }));
    await Promise.all(ps.map(work));
    const all = Array.from({ length: 12 }, (_, i) => `s${i + 1}`).sort();
    for (const p of ps) expect(learnedSuccesses(p.received).sort()).toEqual(all);
    const old = ps[0]!.received;
    expect(old.filter((m) => m.type === 'step.update')).toHaveLength(12);
    expect(old.some((m) => m.type === 'step.updates' || ((m.type === 'assign' || m.type === 'wait' || m.type === 'complete') && m.succeeded !== undefined))).toBe(false);
    for (const p of ps.slice(1)) {
      const frames = p.received.filter((m) => m.type === 'step.update' || m.type === 'step.updates').length;
      // Each of this peer's own assign/complete frames carries what succeeded since the last one.
      expect(frames).toBeLessThan(12);
      expect(p.received.filter((m) => (m.type === 'assign' || m.type === 'complete') && m.succeeded !== undefined).length).toBeGreaterThan(0);
    }
  });
});

describe('targetedUpdates: a busy peer hears failures at once and no one else\'s successes', () => {
  it('a busy targeted peer gets the reopened and failed step at once, never another peer\'s success; complete names who built what', async () => {
    server = await startServer({ dbPath: dir.file('t.db') });
    const schema = flatSchema(3);
    const connect = async (): Promise<RawPeer> => {
      const p = await RawPeer.connect(server!.wsUrl);
      peers.push(p);
      return p;
    };
    const busy = await connect();
    busy.send(helloFor('busy', schema, { coalescedUpdates: true, targetedUpdates: true }));
    const held = await busy.waitType('assign');
    const old = await connect();
    old.send(helloFor('old', schema));
    const failing = await old.waitType('assign');
    const waiter = await connect();
    waiter.send(helloFor('waiter', schema, { coalescedUpdates: true, targetedUpdates: true }));
    const built = await waiter.waitType('assign');
    const finish = (p: RawPeer, a: Assign, ok: boolean): void =>
      p.send({ type: 'step.finished', leaseId: a.leaseId, stepId: a.stepId, ok, exitCode: ok ? 0 : 3, durationMs: 10, ...(ok ? {} : { logTail: 'boom' }) });
    // The waiter builds its step and has nothing left: it waits. The old peer hears that success; the busy one does not.
    finish(waiter, built, true);
    await waiter.waitType('wait');
    await old.waitFor((m) => m.type === 'step.update' && m.stepId === built.stepId);
    // The old peer's step fails: reopened (every member hears it), leased to the waiter, fails again: failed for the cohort.
    finish(old, failing, false);
    expect(await busy.waitFor((m) => m.type === 'step.update' && m.stepId === failing.stepId)).toMatchObject({ state: 'pending' });
    const retry = await waiter.waitFor((m): m is Assign => m.type === 'assign' && m.stepId === failing.stepId);
    finish(waiter, retry, false);
    expect(await busy.waitFor((m) => m.type === 'step.update' && m.stepId === failing.stepId && m.state === 'failed')).toMatchObject({ peerId: 'waiter', exitCode: 3 });
    // Still holding its step, the busy peer never heard of the waiter's success.
    expect(learnedSuccesses(busy.received)).toEqual([]);
    finish(busy, held, true);
    const complete = await busy.waitType('complete');
    // With the build's duration, which it was not told as the step finished.
    expect(complete.summary.builtByOthers).toEqual([{ stepId: built.stepId, peerId: 'waiter', durationMs: expect.any(Number) }]);
    // An old peer's summary has no durations (its strict decoder would refuse the field).
    const oldComplete = await old.waitType('complete');
    expect(oldComplete.summary.builtByOthers.every((b) => !('durationMs' in b))).toBe(true);
    expect(learnedSuccesses(busy.received)).toEqual([held.stepId]);
  });
});
