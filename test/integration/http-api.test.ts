import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

const peerToken = 'peer-token-0123456789abcdef';
const adminToken = 'admin-token-0123456789abcdef';

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-api-');
  server = await startServer({ dbPath: dir.file('api.db'), peerToken, adminToken });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

async function api(path: string, options: { token?: string | null; method?: string } = {}): Promise<{ status: number; body: any }> {
  const token = options.token === undefined ? peerToken : options.token;
  const res = await fetch(`${server.httpUrl}${path}`, {
    method: options.method ?? 'GET',
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

async function joined(peerId: string, schema = flatSchema(2)): Promise<RawPeer> {
  const p = await RawPeer.connect(server.wsUrl, { token: peerToken });
  peers.push(p);
  p.send(helloFor(peerId, schema));
  await p.waitType('welcome');
  return p;
}

/** The HTTP status of an upgrade attempt, or 101 when the WebSocket opened. */
function upgradeStatus(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.wsUrl, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', reject);
  });
}

describe('auth', () => {
  it('refuses the upgrade with HTTP 401 when the token is missing or wrong, before any WebSocket exists', async () => {
    expect(await upgradeStatus({})).toBe(401);
    expect(await upgradeStatus({ authorization: 'Bearer wrong-token-0123456789' })).toBe(401);
    expect(await upgradeStatus({ authorization: peerToken })).toBe(401);
    expect(server.built.app.websocketServer.clients.size).toBe(0);
    expect(await upgradeStatus({ authorization: `Bearer ${peerToken}` })).toBe(101);
  });

  it('admin routes refuse the peer token and no token; reads refuse no token', async () => {
    expect((await api('/api/v1/cohorts/c/cancel', { method: 'POST' })).status).toBe(401);
    expect((await api('/api/v1/cohorts/c/cancel', { method: 'POST', token: null })).status).toBe(401);
    expect((await api('/api/v1/cohorts', { token: null })).status).toBe(401);
    expect((await api('/api/v1/cohorts', { token: adminToken })).status).toBe(200);
  });
});

describe('REST API', () => {
  it('serves /healthz and Prometheus /metrics', async () => {
    expect(await api('/healthz', { token: null })).toMatchObject({ status: 200, body: { status: 'ok' } });
    const p = await joined('m1');
    const assign = await p.waitType('assign');
    p.send({ type: 'step.finished', leaseId: assign.leaseId, stepId: assign.stepId, ok: true, exitCode: 0, durationMs: 3 });
    await p.waitType('step.update');
    const metrics = (await api('/metrics', { token: null })).body as string;
    expect(metrics).toMatch(/^taskshard_peers_connected 1$/m);
    expect(metrics).toMatch(/^taskshard_cohorts_open 1$/m);
    expect(metrics).toMatch(/^taskshard_steps_assigned_total 2$/m);
    expect(metrics).toMatch(/^taskshard_steps_succeeded_total 1$/m);
    expect(metrics).toMatch(/^taskshard_lease_expiries_total 0$/m);
    // Build time saved is one labelled series (the unlabelled duplicate is gone).
    expect(metrics).toMatch(/^taskshard_saved_seconds_total\{unit="build"\} 0$/m);
    expect(metrics).not.toMatch(/taskshard_seconds_saved_total/);
    // Runner time in its own two counters (saved = alone − spent can be negative, which a counter cannot be).
    expect(metrics).toMatch(/^# HELP taskshard_runner_seconds_total Runner time/m);
    expect(metrics).toMatch(/^taskshard_runner_seconds_total 0$/m);
    expect(metrics).toMatch(/^taskshard_runner_seconds_alone_total 0$/m);
    p.sendRaw('junk');
    await p.waitType('error');
    expect((await api('/metrics', { token: null })).body).toMatch(/^taskshard_errors_total\{code="BAD_MESSAGE"\} 1$/m);
  });

  it('lists cohorts and peers and shows a cohort with steps, peers and timeline', async () => {
    const p = await joined('a', dagSchema({ x: [], y: ['x'] }, { x: 5 }));
    const welcome = await p.waitType('welcome');
    const assign = await p.waitType('assign');
    server.clock.advance(7); // the authority records at most its own measure (issue 11): 7 ms pass
    p.send({ type: 'step.finished', leaseId: assign.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: 7 });
    await p.waitFor((m) => m.type === 'assign' && m.stepId === 'y');
    await server.settle();
    const list = await api('/api/v1/cohorts?status=open');
    expect(list.body.cohorts).toHaveLength(1);
    expect(list.body.cohorts[0]).toMatchObject({ id: welcome.cohort.id, schemaId: 'dag', status: 'open', peers: 1, steps: { total: 2, succeeded: 1, leased: 1 } });
    const detail = await api(`/api/v1/cohorts/${welcome.cohort.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.steps.map((s: any) => [s.id, s.status, s.builtBy, s.durationMs])).toEqual([
      ['x', 'succeeded', 'a', 7],
      ['y', 'leased', null, null],
    ]);
    expect(detail.body.peers).toEqual([expect.objectContaining({ peerId: 'a', status: 'connected', pipeline: { name: 'check', type: 'independent' } })]);
    expect(detail.body.timeline.map((e: any) => e.kind)).toEqual(['cohort.created', 'peer.joined', 'step.leased', 'step.succeeded', 'step.leased']);
    expect((await api('/api/v1/peers?status=connected')).body.peers.map((x: any) => x.peerId)).toEqual(['a']);
    expect((await api('/api/v1/stats')).body).toMatchObject({ cohorts: { open: 1 }, steps: { succeeded: 1 }, peers: { connected: 1 } });
  });

  it('answers 404 for an unknown cohort and 400 naming the bad parameter', async () => {
    expect(await api('/api/v1/cohorts/c_nope')).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'no cohort c_nope' } } });
    const bad = await api('/api/v1/cohorts?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^query\.limit: must be at least 1/);
    expect((await api('/api/v1/cohorts?status=weird')).body.error.message).toMatch(/^query\.status: must be one of "open", "complete", "cancelled"/);
    expect((await api('/api/v1/cohorts/bad%20id')).body.error.message).toMatch(/^params\.id: must be a cohort id/);
  });

  it('admin cancel completes every peer with outcome cancelled; retry reopens a failed step', async () => {
    const p = await joined('a', flatSchema(2));
    const welcome = await p.waitType('welcome');
    const assign = await p.waitType('assign');
    const cancel = await api(`/api/v1/cohorts/${welcome.cohort.id}/cancel`, { method: 'POST', token: adminToken });
    expect(cancel).toEqual({ status: 200, body: { ok: true } });
    expect(await p.waitType('abort')).toMatchObject({ leaseId: assign.leaseId, reason: 'cancelled' });
    expect(await p.waitType('complete')).toMatchObject({ outcome: 'cancelled' });
    expect((await api(`/api/v1/cohorts/${welcome.cohort.id}/cancel`, { method: 'POST', token: adminToken })).status).toBe(409);

    const q = await joined('b', dagSchema({ bad: [] }, {}, 'other'));
    for (let attempt = 0; attempt < 2; attempt++) {
      const a = await q.waitFor((m) => m.type === 'assign' && m.attempt === attempt + 1);
      if (a.type !== 'assign') throw new Error('expected assign');
      q.send({ type: 'step.finished', leaseId: a.leaseId, stepId: 'bad', ok: false, exitCode: 2, durationMs: 1 });
    }
    const done = await q.waitType('complete');
    expect(done.outcome).toBe('failed');
    const qWelcome = await q.waitType('welcome');
    const retry = await api(`/api/v1/cohorts/${qWelcome.cohort.id}/steps/bad/retry`, { method: 'POST', token: adminToken });
    expect(retry).toEqual({ status: 200, body: { ok: true } });
    expect((await api(`/api/v1/cohorts/${qWelcome.cohort.id}`)).body.steps[0]).toMatchObject({ status: 'pending', failures: 0 });
    expect((await api(`/api/v1/cohorts/${qWelcome.cohort.id}/steps/nope/retry`, { method: 'POST', token: adminToken })).status).toBe(404);
  });

  it('the admin API is disabled without an admin token', async () => {
    await server.close();
    server = await startServer({ dbPath: dir.file('noadmin.db') });
    const res = await fetch(`${server.httpUrl}/api/v1/cohorts/x/cancel`, { method: 'POST' });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: { code: 'ADMIN_DISABLED', message: 'the admin API is disabled: start the server with TASKSHARD_ADMIN_TOKEN set' } });
  });
});
