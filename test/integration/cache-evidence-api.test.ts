import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * POST/GET /api/v1/cohorts/:id/cache-evidence on a real authority: what a peer's universe took from
 * the cache, stored with the cohort (it survives a restart and is in GET /api/v1/cohorts/:id) and
 * pushed live on the dashboard's event stream.
 */
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
    expect(listed).toEqual({ cohortId, peers: [{ peerId: 'peer-a', reportedAtMs: server!.clock.now(), ...evidence, source: 'record' }] });
    // Totals from the tool's summary line: no per-step detail, and the entry says so.
    const fromOutput = { tool: 'bazel', hits: 30, misses: 1, missedSteps: [], source: 'output' };
    expect((await fetch(url, { method: 'POST', headers, body: JSON.stringify({ peerId: 'peer-a', evidence: fromOutput }) })).status).toBe(201);
    expect(((await (await fetch(url, { headers })).json()) as any).peers).toEqual([{ peerId: 'peer-a', reportedAtMs: server!.clock.now(), ...fromOutput }]);
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
    expect((await post({ peerId: 'peer-a', evidence: { ...evidence, source: 'output' } })).body.error.message).toMatch(/must be empty when source is "output"/);
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

  it('is stored with the cohort: a restart keeps it, GET /api/v1/cohorts/:id shows it, a later report replaces the peer\'s earlier one', async () => {
    const { cohortId, headers } = await joined();
    const url = `${server!.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`;
    expect((await fetch(url, { method: 'POST', headers, body: JSON.stringify({ peerId: 'peer-a', evidence: { ...evidence, hits: 1 } }) })).status).toBe(201);
    server!.clock.advance(1000);
    const reportedAtMs = server!.clock.now();
    expect((await fetch(url, { method: 'POST', headers, body: JSON.stringify({ peerId: 'peer-a', evidence }) })).status).toBe(201);
    for (const p of peers.splice(0)) await p.kill();
    await server!.close();
    server = await startServer({ dbPath: dir.file('a.db') });
    const expected = [{ peerId: 'peer-a', reportedAtMs, ...evidence, source: 'record' }];
    expect((await (await fetch(`${server.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`)).json()) as unknown).toEqual({ cohortId, peers: expected });
    const detail = (await (await fetch(`${server.httpUrl}/api/v1/cohorts/${cohortId}`)).json()) as { cacheEvidence: unknown };
    expect(detail.cacheEvidence).toEqual(expected);
  });

  it('refuses a body over 64 KiB and, with tokens, the dashboard cookie (a write needs the Bearer token)', async () => {
    const token = 's3cret-token-0123456789';
    const { cohortId, headers } = await joined(token);
    const url = `${server!.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`;
    const huge = JSON.stringify({ peerId: 'peer-a', evidence, padding: 'x'.repeat(70 * 1024) });
    expect((await fetch(url, { method: 'POST', headers, body: huge })).status).toBe(413);
    const cookie = { 'content-type': 'application/json', cookie: `taskshard_token=${token}` };
    const byCookie = await fetch(url, { method: 'POST', headers: cookie, body: JSON.stringify({ peerId: 'peer-a', evidence }) });
    expect(byCookie.status).toBe(401);
    // ... while reading with the cookie is fine.
    expect((await fetch(url, { headers: { cookie: `taskshard_token=${token}` } })).status).toBe(200);
  });

  it('pushes each stored report to the event stream of its cohort', async () => {
    const { cohortId, headers } = await joined();
    const events: { event: string; data: string }[] = [];
    const arrived = new Promise<void>((resolve, reject) => {
      const req = http.get(`${server!.httpUrl}/api/v1/events?cohort=${cohortId}`, (res) => {
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          if (buffer.includes(': connected')) {
            buffer = buffer.replace(/^[\s\S]*?: connected\n\n/, '');
            void fetch(`${server!.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`, { method: 'POST', headers, body: JSON.stringify({ peerId: 'peer-a', evidence }) });
          }
          for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data });
            if (event === 'cache-evidence') {
              req.destroy();
              resolve();
            }
          }
        });
      });
      req.on('error', (err) => {
        if (!req.destroyed) reject(err);
      });
    });
    await arrived;
    expect(events.filter((e) => e.event === 'cache-evidence').map((e) => JSON.parse(e.data) as unknown)).toEqual([
      { cohortId, evidence: { peerId: 'peer-a', reportedAtMs: server!.clock.now(), ...evidence, source: 'record' } },
    ]);
  });
});
