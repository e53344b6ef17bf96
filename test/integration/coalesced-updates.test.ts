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
