import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The read API's filters and the fields the store's read model added (leases, log tails, pipeline names). */
let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-read-');
  server = await startServer({ dbPath: dir.file('read.db') });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.httpUrl}${path}`);
  return { status: res.status, body: await res.json() };
}

async function join(peerId: string, over: Parameters<typeof helloFor>[2]): Promise<{ peer: RawPeer; cohortId: string }> {
  const peer = await RawPeer.connect(server.wsUrl);
  peers.push(peer);
  peer.send(helloFor(peerId, flatSchema(1), over));
  const welcome = await peer.waitType('welcome');
  return { peer, cohortId: welcome.cohort.id };
}

describe('read API over the store read model', () => {
  it('filters cohorts by repo, pipeline name and type, and peers by cohort; shows leases and log tails', async () => {
    const check = await join('a', {});
    const gate = await join('b', { repo: 'https://example.com/acme/other.git', pipeline: { name: 'gate', type: 'dependent' } });
    // A failed step is retried; the peer keeps failing it until the cohort gives up on it.
    const leaseIds: string[] = [];
    for (;;) {
      const next = await check.peer.waitFor((m) => (m.type === 'assign' && !leaseIds.includes(m.leaseId)) || m.type === 'complete');
      if (next.type !== 'assign') break;
      leaseIds.push(next.leaseId);
      check.peer.send({ type: 'step.finished', leaseId: next.leaseId, stepId: next.stepId, ok: false, exitCode: 3, durationMs: 4, logTail: 'error: boom' });
    }
    await server.settle();

    const ids = async (query: string) => (await get(`/api/v1/cohorts?${query}`)).body.cohorts.map((c: any) => c.id);
    expect(await ids('repo=https%3A%2F%2Fexample.com%2Facme%2Fother.git')).toEqual([gate.cohortId]);
    expect(await ids('pipeline=check')).toEqual([check.cohortId]);
    expect(await ids('pipelineType=dependent')).toEqual([gate.cohortId]);
    expect(await ids('pipeline=nightly')).toEqual([]);
    expect((await get('/api/v1/cohorts?pipelineType=serial')).status).toBe(400);
    expect((await get(`/api/v1/cohorts?pipeline=gate`)).body.cohorts[0]).toMatchObject({ pipelineNames: ['gate'], pipelineType: 'dependent' });

    expect((await get(`/api/v1/peers?cohort=${gate.cohortId}`)).body.peers.map((p: any) => p.peerId)).toEqual(['b']);
    expect((await get('/api/v1/peers?cohort=no%20such')).status).toBe(400);

    const detail = (await get(`/api/v1/cohorts/${check.cohortId}`)).body;
    expect(detail.leases).toEqual(
      leaseIds.map((leaseId, i) => ({ leaseId, stepId: 's1', peerId: 'a', attempt: i + 1, backup: false, startedAt: expect.any(String), endedAt: expect.any(String), outcome: 'failed' })),
    );
    expect(leaseIds.length).toBeGreaterThan(1);
    expect(detail.steps[0]).toMatchObject({ id: 's1', status: 'failed', failExitCode: 3, failLogTail: 'error: boom' });
    expect(detail.timeline.every((e: any, i: number) => i === 0 || e.seq > detail.timeline[i - 1].seq)).toBe(true);
  });
});
