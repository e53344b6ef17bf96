import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/** POST/GET /api/v1/cohorts/:id/cache-evidence on a real authority: what a peer's universe took from the cache. */
let dir: ReturnType<typeof tempDir>;
let server: TestServer | null;
const peers: RawPeer[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-evidence-');
  server = null;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server?.close();
  dir.remove();
});

const evidence = { tool: 'bazel', hits: 22, misses: 2, missedSteps: ['s2'] };

async function joined(token?: string): Promise<{ cohortId: string; headers: Record<string, string> }> {
  server = await startServer({ dbPath: dir.file('a.db'), ...(token ? { peerToken: token } : {}) });
  const p = await RawPeer.connect(server.wsUrl, token ? { token } : {});
  peers.push(p);
  p.send(helloFor('peer-a', flatSchema(3)));
  const welcome = await p.waitType('welcome');
  await server.settle();
  return { cohortId: welcome.cohort.id, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } };
}

describe('cache evidence API', () => {
  it('records a member peer\'s evidence and lists it per peer', async () => {
    const { cohortId, headers } = await joined();
    const url = `${server!.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`;
    expect((await (await fetch(url, { headers })).json()) as unknown).toEqual({ cohortId, peers: [] });
    const posted = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ peerId: 'peer-a', evidence }) });
    expect(posted.status).toBe(201);
    const listed = (await (await fetch(url, { headers })).json()) as any;
    expect(listed).toEqual({ cohortId, peers: [{ peerId: 'peer-a', reportedAtMs: server!.clock.now(), ...evidence }] });
  });

  it('refuses bad bodies, strangers, unknown steps and unknown cohorts, naming what is wrong', async () => {
    const { cohortId, headers } = await joined();
    const url = `${server!.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`;
    const post = async (body: unknown, to = url) => {
      const res = await fetch(to, { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    const bad = await post({ peerId: 'peer-a', evidence: { ...evidence, hits: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/body\.evidence\.hits/);
    expect((await post({ peerId: 'peer-a', evidence: { ...evidence, tool: 'make' } })).status).toBe(400);
    expect(await post({ peerId: 'peer-z', evidence })).toEqual({ status: 409, body: { error: { code: 'NOT_A_MEMBER', message: `peer peer-z was not a member of cohort ${cohortId}` } } });
    expect((await post({ peerId: 'peer-a', evidence: { ...evidence, missedSteps: ['nope'] } })).body.error.message).toBe(`body.evidence.missedSteps: unknown step(s) nope in cohort ${cohortId}`);
    expect((await post({ peerId: 'peer-a', evidence }, `${server!.httpUrl}/api/v1/cohorts/c_missing/cache-evidence`)).status).toBe(404);
    expect((await (await fetch(url, { headers })).json()) as unknown).toEqual({ cohortId, peers: [] });
  });

  it('needs the peer token when the authority has one', async () => {
    const { cohortId, headers } = await joined('s3cret-token-0123456789');
    const url = `${server!.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`;
    const body = JSON.stringify({ peerId: 'peer-a', evidence });
    expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', headers, body })).status).toBe(201);
  });
});
