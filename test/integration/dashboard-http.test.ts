import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The dashboard's HTTP side against a real authority: login cookie, pages,
 * the timeline and trace of a run driven by a raw peer on a fake clock,
 * outcome and failure causes in the cohort API, and the live event stream.
 */

const peerToken = 'peer-token-0123456789abcdef';

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-dash-');
  server = await startServer({ dbPath: dir.file('dash.db'), peerToken });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${server.httpUrl}${path}`, { headers, redirect: 'manual' });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

async function joined(peerId: string, schema = dagSchema({ x: [], y: ['x'] })): Promise<RawPeer> {
  const p = await RawPeer.connect(server.wsUrl, { token: peerToken });
  peers.push(p);
  p.send(helloFor(peerId, schema));
  return p;
}

/** Reads an SSE stream until `until` holds for the events seen, then closes it. */
function readEvents(path: string, cookie: string, ready: () => void, until: (events: { event: string; data: any }[]) => boolean): Promise<{ event: string; data: any }[]> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${server.httpUrl}${path}`, { headers: { cookie } }, (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      res.setEncoding('utf8');
      let buffer = '';
      const events: { event: string; data: any }[] = [];
      let announced = false;
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!announced) {
            announced = true;
            ready();
          }
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
        if (until(events)) {
          req.destroy();
          resolve(events);
        }
      });
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
  });
}

describe('dashboard login and pages', () => {
  it('sends a browser without the cookie to the login form; the right token sets an HttpOnly cookie', async () => {
    const page = await get('/cohorts/c_x');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Fcohorts%2Fc_x');
    expect((await get('/login')).body).toContain('<form method="post" action="/login">');
    expect((await get('/api/v1/cohorts')).status).toBe(401);

    const post = (token: string, next: string) =>
      fetch(`${server.httpUrl}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, next }).toString() });
    const wrong = await post('wrong-token-0123456789', '/peers');
    expect(wrong.status).toBe(303);
    expect(wrong.headers.get('location')).toBe('/login?error=1&next=%2Fpeers');
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const right = await post(peerToken, '//evil.example/');
    expect(right.headers.get('location')).toBe('/'); // never an off-site redirect
    const cookie = right.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^taskshard_token=peer-token-0123456789abcdef; HttpOnly; SameSite=Strict; Path=\//);
    const jar = cookie.split(';')[0]!;
    const home = await get('/', { cookie: jar });
    expect(home.status).toBe(200);
    expect(home.body).toContain('<script type="module" src="/assets/app.js">');
    expect(home.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await get('/api/v1/cohorts', { cookie: jar })).status).toBe(200);
    expect((await get('/api/v1/cohorts', { cookie: 'taskshard_token=nope' })).status).toBe(401);
    expect((await get('/assets/app.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await get('/assets/nope.js')).status).toBe(404);
  });

  it('without tokens there is no login: pages and API are open (loopback only)', async () => {
    await server.close();
    server = await startServer({ dbPath: dir.file('open.db') });
    expect((await get('/')).status).toBe(200);
    expect((await get('/peers')).status).toBe(200);
    const login = await get('/login');
    expect([login.status, login.headers.get('location')]).toEqual([303, '/']);
  });
});

describe('a run through the API', () => {
  const auth = { authorization: `Bearer ${peerToken}` };

  it('timeline and trace show who built what; the cohort gains outcome, failure causes and log tails', async () => {
    const p = await joined('p1');
    const welcome = await p.waitType('welcome');
    const id = welcome.cohort.id;
    const x = await p.waitType('assign');
    server.clock.advance(1500);
    p.send({ type: 'step.finished', leaseId: x.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: 1500 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const y = await p.waitFor((m) => m.type === 'assign' && m.stepId === 'y' && m.attempt === attempt);
      if (y.type !== 'assign') throw new Error('expected assign');
      server.clock.advance(250);
      p.send({ type: 'step.finished', leaseId: y.leaseId, stepId: 'y', ok: false, exitCode: 7, durationMs: 250, logTail: `error: y is broken (attempt ${attempt})` });
    }
    expect((await p.waitType('complete')).outcome).toBe('failed');
    await server.settle();

    const t = (await get(`/api/v1/cohorts/${id}/timeline`, auth)).body;
    expect(t.outcome).toBe('failed');
    expect(t.lanes.map((l: any) => l.peerId)).toEqual(['p1']);
    expect(t.lanes[0].bars.map((b: any) => [b.kind, b.stepId, b.endMs - b.startMs, b.retried])).toEqual([
      ['built', 'x', 1500, false],
      ['failed', 'y', 250, false],
      ['failed', 'y', 250, true],
    ]);
    expect(t.steps.map((s: any) => [s.stepId, s.status, s.builtBy, s.attempts])).toEqual([
      ['x', 'succeeded', 'p1', 1],
      ['y', 'failed', null, 2],
    ]);

    const detail = (await get(`/api/v1/cohorts/${id}`, auth)).body;
    expect(detail.cohort.outcome).toBe('failed');
    expect(detail.failures).toEqual([{ stepId: 'y', peerId: 'p1', exitCode: 7, reason: expect.stringMatching(/^failed 2 times/), logTail: 'error: y is broken (attempt 2)' }]);
    expect((await get('/api/v1/cohorts', auth)).body.cohorts[0].outcome).toBe('failed');

    const trace = await get(`/api/v1/cohorts/${id}/trace`, auth);
    expect(trace.headers.get('content-disposition')).toBe(`inline; filename="taskshard-${id}.trace.json"`);
    expect(trace.body.traceEvents.filter((e: any) => e.ph === 'X').map((e: any) => [e.name, e.ts, e.dur])).toEqual([
      ['x', 0, 1_500_000],
      ['y', 1_500_000, 250_000],
      ['y', 1_750_000, 250_000],
    ]);
    expect((await get('/api/v1/cohorts/c_none/trace', auth)).status).toBe(404);
    expect((await get('/api/v1/cohorts/c_none/timeline', { cookie: 'taskshard_token=x' })).status).toBe(401);
    const live = (await get('/api/v1/peers/live', auth)).body.peers;
    expect(live).toEqual([expect.objectContaining({ peerId: 'p1', cohortId: id, doing: 'finishing (failed)' })]);
    const trends = (await get('/api/v1/trends', auth)).body;
    expect(trends.rows).toEqual([expect.objectContaining({ schemaId: 'dag', runs: 1, stepsBuilt: 1, failed: 1 })]);
  });

  it('the event stream pushes a change per committed batch, filtered by cohort', async () => {
    const cookie = `taskshard_token=${peerToken}`;
    let p: RawPeer | null = null;
    const events = await readEvents(
      '/api/v1/events',
      cookie,
      () => {
        void joined('p1').then((peer) => {
          p = peer;
          return peer.waitType('assign').then((a) => peer.send({ type: 'step.finished', leaseId: a.leaseId, stepId: a.stepId, ok: true, exitCode: 0, durationMs: 5 }));
        });
      },
      (evs) => evs.some((e) => e.event === 'cohort' && e.data.kinds.includes('step.succeeded')),
    );
    const kinds = events.filter((e) => e.event === 'cohort').flatMap((e) => e.data.kinds);
    expect(kinds.slice(0, 3)).toEqual(['cohort.created', 'peer.joined', 'step.leased']);
    expect(kinds).toContain('step.succeeded');
    expect(events.some((e) => e.event === 'peers')).toBe(true);
    expect(p).not.toBeNull();
    const unauthorized = await fetch(`${server.httpUrl}/api/v1/events`);
    expect(unauthorized.status).toBe(401);
  });
});
