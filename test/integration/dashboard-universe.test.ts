import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/** POST /api/v1/cohorts/:id/universe: a member reports its universe build; the timeline draws it; old peers keep the inferred bar. */

const peerToken = 'peer-token-0123456789abcdef';
let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-universe-');
  server = await startServer({ dbPath: dir.file('u.db'), peerToken });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

const auth = { authorization: `Bearer ${peerToken}` };
const post = async (cohortId: string, body: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${server.httpUrl}/api/v1/cohorts/${cohortId}/universe`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};

describe('POST /api/v1/cohorts/:id/universe', () => {
  it('stores a member\'s build after complete, once; the timeline draws it and keeps the others inferred', async () => {
    const members = await Promise.all(['p1', 'p2'].map(async (id) => {
      const p = await RawPeer.connect(server.wsUrl, { token: peerToken });
      peers.push(p);
      p.send(helloFor(id, dagSchema({ x: [] })));
      return p;
    }));
    const [p1, p2] = members as [RawPeer, RawPeer];
    const a = await p1.waitType('assign');
    const cohortId = a.cohortId;
    expect((await post(cohortId, { peerId: 'p1', ok: true, exitCode: 0, durationMs: 10 })).body.error.code).toBe('COHORT_OPEN');
    server.clock.advance(2000);
    p1.send({ type: 'step.finished', leaseId: a.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: 2000 });
    await Promise.all([p1.waitType('complete'), p2.waitType('complete')]);
    for (const p of [p1, p2]) {
      p.send({ type: 'bye', reason: 'cohort complete' });
      await p.close();
    }
    await server.settle();
    const completeAt = server.clock.now();
    server.clock.advance(90_000); // p1's universe build: 90 s

    const ok = await post(cohortId, { peerId: 'p1', ok: true, exitCode: 0, durationMs: 90_000 });
    expect(ok.status).toBe(201);
    expect(ok.body).toEqual({ cohortId, peerId: 'p1', startedAtMs: completeAt, endedAtMs: completeAt + 90_000, ok: true, exitCode: 0 });
    expect((await post(cohortId, { peerId: 'p1', ok: true, exitCode: 0, durationMs: 5 })).body.error.code).toBe('ALREADY_REPORTED');
    expect((await post(cohortId, { peerId: 'stranger', ok: true, exitCode: 0, durationMs: 5 })).status).toBe(409);
    expect((await post('c_none', { peerId: 'p1', ok: true, exitCode: 0, durationMs: 5 })).status).toBe(404);
    expect((await post(cohortId, { peerId: 'p2', ok: true, exitCode: 0, durationMs: 1.5 })).body.error.message).toContain('body.durationMs');
    expect((await post(cohortId, { peerId: 'p2', ok: true, exitCode: 0, durationMs: 5, extra: 1 })).status).toBe(400);
    expect((await post(cohortId, { peerId: 'p2', ok: true, exitCode: 0, durationMs: 5 }, {})).status).toBe(401);

    const timeline = (await (await fetch(`${server.httpUrl}/api/v1/cohorts/${cohortId}/timeline`, { headers: auth })).json()) as any;
    const universe = (peerId: string) => timeline.lanes.find((l: { peerId: string }) => l.peerId === peerId).bars.find((b: { kind: string }) => b.kind === 'universe');
    expect(universe('p1')).toMatchObject({ startMs: completeAt, endMs: completeAt + 90_000, inferred: false, ok: true });
    expect(universe('p2')).toMatchObject({ inferred: true, ok: null });
    const detail = (await (await fetch(`${server.httpUrl}/api/v1/cohorts/${cohortId}`, { headers: auth })).json()) as any;
    expect(detail.timeline.filter((e: { kind: string }) => e.kind === 'universe.built').map((e: { peerId: string }) => e.peerId)).toEqual(['p1']);
  });
});
