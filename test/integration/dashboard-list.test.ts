import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The cohort list the dashboard pages through: repo, pipeline name and outcome filtered by the
 * server (over every stored cohort, not one page), and a `next` cursor that never skips a cohort.
 */

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-list-');
  server = await startServer({ dbPath: dir.file('l.db') });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

const get = async (path: string): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${server.httpUrl}${path}`);
  return { status: res.status, body: await res.json() };
};

/** A cohort of one peer on its own patchset; `end` says how it ends. */
async function cohort(n: number, end: 'succeeded' | 'failed' | 'abandoned' | 'running', pipeline = 'check'): Promise<void> {
  const p = await RawPeer.connect(server.wsUrl);
  peers.push(p);
  p.send(helloFor(`p${n}`, dagSchema({ x: [] }), { patchsets: [`refs/changes/${n}/1`], pipeline: { name: pipeline, type: 'independent' } }));
  const a = await p.waitType('assign');
  if (end === 'succeeded') p.send({ type: 'step.finished', leaseId: a.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: 5 });
  if (end === 'failed') {
    // Retried once (on this peer: it is alone), then failed for the cohort.
    p.send({ type: 'step.finished', leaseId: a.leaseId, stepId: 'x', ok: false, exitCode: 3, durationMs: 5 });
    const again = await p.waitFor((m) => m.type === 'assign' && m.leaseId !== a.leaseId);
    if (again.type !== 'assign') throw new Error('expected a second assign');
    p.send({ type: 'step.finished', leaseId: again.leaseId, stepId: 'x', ok: false, exitCode: 3, durationMs: 5 });
  }
  if (end === 'abandoned') p.send({ type: 'bye', reason: 'cancelled job' });
  if (end === 'succeeded' || end === 'failed') await p.waitType('complete');
  if (end === 'abandoned') await p.close();
  await server.settle();
  server.clock.advance(1000);
}

describe('GET /api/v1/cohorts', () => {
  it('filters by outcome and pipeline on the server and pages with a cursor', async () => {
    await cohort(1, 'succeeded');
    await cohort(2, 'failed', 'gate');
    await cohort(3, 'abandoned');
    await cohort(4, 'running', 'gate');
    await cohort(5, 'succeeded', 'gate');
    const ids = async (query: string): Promise<string[]> => (await get(`/api/v1/cohorts?${query}`)).body.cohorts.map((c: { peers: number; id: string }) => c.id);
    const all = (await get('/api/v1/cohorts')).body;
    expect(all.next).toBeNull();
    expect(all.cohorts.map((c: { outcome: string | null }) => c.outcome)).toEqual(['succeeded', null, 'abandoned', 'failed', 'succeeded']);
    const [c5, c4, c3, c2, c1] = all.cohorts.map((c: { id: string }) => c.id);
    expect(await ids('outcome=succeeded')).toEqual([c5, c1]);
    expect(await ids('outcome=failed')).toEqual([c2]);
    expect(await ids('outcome=abandoned')).toEqual([c3]);
    expect(await ids('outcome=running')).toEqual([c4]);
    expect(await ids('outcome=cancelled')).toEqual([]);
    expect(await ids('outcome=succeeded&pipeline=gate')).toEqual([c5]);
    expect(await ids('repo=git%40example.com%3Aacme%2Fmono.git&outcome=failed')).toEqual([c2]); // any spelling of the repo

    // Pages of two, following `next` to the end.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { cohorts: { id: string }[]; next: string | null } } = await get(`/api/v1/cohorts?limit=2${cursor ? `&before=${encodeURIComponent(cursor)}` : ''}`);
      seen.push(...page.body.cohorts.map((c) => c.id));
      cursor = page.body.next;
    } while (cursor !== null);
    expect(seen).toEqual([c5, c4, c3, c2, c1]);
    const gatePage = (await get('/api/v1/cohorts?limit=1&pipeline=gate')).body;
    expect((await ids(`limit=5&pipeline=gate&before=${encodeURIComponent(gatePage.next)}`))).toEqual([c4, c2]);

    expect((await get('/api/v1/cohorts?before=yesterday')).status).toBe(400);
    expect((await get('/api/v1/cohorts?outcome=running&status=complete')).status).toBe(400);
    expect((await get('/api/v1/cohorts?outcome=exploded')).status).toBe(400);
  });
});

describe('a peer\'s CI job link', () => {
  it('is taken from hello, kept with the peer and shown by the peers API, the live peers and the run\'s lanes', async () => {
    const url = 'https://github.com/acme/mono/actions/runs/9001/attempts/2';
    const p = await RawPeer.connect(server.wsUrl);
    peers.push(p);
    p.send(helloFor('p-ci', dagSchema({ x: [] }), { ciJobUrl: url }));
    const welcome = await p.waitType('welcome');
    const q = await RawPeer.connect(server.wsUrl);
    peers.push(q);
    q.send(helloFor('p-local', dagSchema({ x: [] })));
    await q.waitType('welcome');
    await server.settle();
    const listed = (await get('/api/v1/peers')).body.peers as { peerId: string; ciJobUrl: string | null }[];
    expect(Object.fromEntries(listed.map((x) => [x.peerId, x.ciJobUrl]))).toEqual({ 'p-ci': url, 'p-local': null });
    const live = (await get('/api/v1/peers/live')).body.peers as { peerId: string; ciJobUrl: string | null }[];
    expect(live.find((x) => x.peerId === 'p-ci')?.ciJobUrl).toBe(url);
    const timeline = (await get(`/api/v1/cohorts/${welcome.cohort.id}/timeline`)).body as { lanes: { peerId: string; ciJobUrl: string | null }[] };
    expect(timeline.lanes.map((l) => [l.peerId, l.ciJobUrl])).toEqual([['p-ci', url], ['p-local', null]]);
  });

  it('must be an http(s) URL without credentials', async () => {
    for (const bad of ['javascript:alert(1)', 'https://user:token@ci.example/job/1', '/relative/job', `https://ci.example/${'a'.repeat(1100)}`]) {
      const p = await RawPeer.connect(server.wsUrl);
      peers.push(p);
      p.send(helloFor('p-bad', dagSchema({ x: [] }), { ciJobUrl: bad }));
      const error = await p.waitType('error');
      expect(error.code).toBe('BAD_MESSAGE');
      expect(error.message).toContain('ciJobUrl');
    }
  });
});

