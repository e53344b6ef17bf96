import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Assign } from '../../shared/protocol.js';
import { dumpDb, queryDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
let server: TestServer | null;
const peers: RawPeer[] = [];
const sockets: WebSocket[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-faults-');
  server = null;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  for (const s of sockets.splice(0)) s.terminate();
  await server?.close();
  dir.remove();
});

async function connect(s: TestServer): Promise<RawPeer> {
  const p = await RawPeer.connect(s.wsUrl);
  peers.push(p);
  return p;
}

/** Polls a condition on the event loop (no fixed sleeps), failing after `timeoutMs`. */
async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('faults at the authority', () => {
  it('50 peers connecting at once to a single-step cohort get exactly 1 lease', async () => {
    server = await startServer({ dbPath: dir.file('fifty.db') });
    const schema = flatSchema(1);
    const ps = await Promise.all(Array.from({ length: 50 }, () => connect(server!)));
    ps.forEach((p, i) => p.send(helloFor(`p${i}`, schema)));
    await Promise.all(ps.map((p) => p.waitFor((m) => m.type === 'assign' || m.type === 'wait')));
    const assigned = ps.filter((p) => p.received.some((m) => m.type === 'assign'));
    expect(assigned).toHaveLength(1);
    await server.settle();
    expect(queryDb(dir.file('fifty.db'), 'SELECT count(*) AS n FROM leases')).toEqual([{ n: 1 }]);
    expect(queryDb(dir.file('fifty.db'), 'SELECT count(DISTINCT cohort_id) AS n FROM peers')).toEqual([{ n: 1 }]);
  });

  it('a completion from a lost lease is accepted once while the step is unresolved', async () => {
    server = await startServer({ dbPath: dir.file('late.db'), leaseGraceSec: 5 });
    const schema = flatSchema(1);
    const a = await connect(server);
    a.send(helloFor('a', schema));
    const welcome = await a.waitType('welcome');
    const lease = await a.waitType('assign');
    await a.kill();
    await server.settle();
    await server.advance(5_000); // lease lost, nobody else to take it: the step is pending again
    const back = await connect(server);
    back.send(helloFor('a', schema, { resumeToken: welcome.resumeToken, currentStep: { stepId: 's1', leaseId: lease.leaseId } }));
    await back.waitType('welcome');
    back.send({ type: 'step.finished', leaseId: lease.leaseId, stepId: 's1', ok: true, exitCode: 0, durationMs: 9 });
    await back.waitType('complete');
    back.send({ type: 'step.finished', leaseId: lease.leaseId, stepId: 's1', ok: true, exitCode: 0, durationMs: 9 });
    expect(await back.waitType('error')).toMatchObject({ code: 'STALE_LEASE' });
    await server.settle();
    expect(queryDb(dir.file('late.db'), 'SELECT step_id, status, built_by FROM steps')).toEqual([{ step_id: 's1', status: 'succeeded', built_by: 'a' }]);
    expect(queryDb(dir.file('late.db'), "SELECT peer_id FROM events WHERE kind = 'step.late-completion'")).toEqual([{ peer_id: 'a' }]);
    expect(queryDb(dir.file('late.db'), 'SELECT lease_id, outcome FROM leases')).toEqual([{ lease_id: lease.leaseId, outcome: 'lost' }]);
  });

  it('peer A cannot finish peer B\'s lease', async () => {
    server = await startServer({ dbPath: dir.file('ab.db') });
    const schema = flatSchema(2);
    const a = await connect(server);
    const b = await connect(server);
    a.send(helloFor('a', schema));
    await a.waitType('assign');
    b.send(helloFor('b', schema));
    const bLease = await b.waitType('assign');
    await server.settle();
    const before = dumpDb(dir.file('ab.db'));
    a.send({ type: 'step.finished', leaseId: bLease.leaseId, stepId: bLease.stepId, ok: true, exitCode: 0, durationMs: 1 });
    expect(await a.waitType('error')).toMatchObject({ code: 'LEASE_NOT_HELD', leaseId: bLease.leaseId });
    await server.settle();
    expect(dumpDb(dir.file('ab.db'))).toEqual(before);
  });

  it('peer A cannot take over or renew peer B\'s lease', async () => {
    server = await startServer({ dbPath: dir.file('renew.db') });
    const schema = flatSchema(2);
    const b = await connect(server);
    b.send(helloFor('b', schema));
    const bLease = await b.waitType('assign');
    await server.settle();
    const before = dumpDb(dir.file('renew.db'));
    // As B without B's resume token: refused, B keeps its lease and its connection.
    const impostor = await connect(server);
    impostor.send(helloFor('b', schema, { resumeToken: 'rt_guessed', currentStep: { stepId: bLease.stepId, leaseId: bLease.leaseId } }));
    expect(await impostor.waitType('error')).toMatchObject({ code: 'DUPLICATE_PEER' });
    expect(await impostor.closed()).toBe(4409);
    // As itself, claiming B's lease as its current step: the lease stays B's, and A's report of it is refused.
    const a = await connect(server);
    a.send(helloFor('a', schema, { currentStep: { stepId: bLease.stepId, leaseId: bLease.leaseId } }));
    await a.waitType('welcome');
    a.send({ type: 'step.finished', leaseId: bLease.leaseId, stepId: bLease.stepId, ok: true, exitCode: 0, durationMs: 1 });
    expect(await a.waitType('error')).toMatchObject({ code: 'LEASE_NOT_HELD' });
    await server.settle();
    const after = dumpDb(dir.file('renew.db'));
    const bRow = (d: Record<string, unknown[]>) => d.leases!.filter((l) => (l as { lease_id: string }).lease_id === bLease.leaseId);
    expect(bRow(after)).toEqual(bRow(before));
    expect(bRow(after)).toEqual([expect.objectContaining({ peer_id: 'b', outcome: null })]);
    expect(after.steps!.filter((s) => (s as { status: string }).status === 'succeeded')).toEqual([]);
    expect(b.closeCode).toBeNull();
    b.send({ type: 'step.finished', leaseId: bLease.leaseId, stepId: bLease.stepId, ok: true, exitCode: 0, durationMs: 1 });
    await b.waitFor((m) => m.type === 'step.update' && m.stepId === bLease.stepId);
  });

  it('finds a half-open peer (no pongs, no close) within 2 x ping interval + 1 s; its lease enters grace', async () => {
    const pingIntervalMs = 200;
    server = await startServer({ dbPath: dir.file('half.db'), pingIntervalMs, leaseGraceSec: 60 });
    const socket = new WebSocket(server.wsUrl, { autoPong: false });
    sockets.push(socket);
    await new Promise((resolve) => socket.once('open', resolve));
    const gotAssign = new Promise<void>((resolve) => socket.on('message', (d) => JSON.parse(d.toString()).type === 'assign' && resolve()));
    socket.send(JSON.stringify(helloFor('silent', flatSchema(1))));
    await gotAssign;
    const start = Date.now();
    const db = dir.file('half.db');
    await until('the silent peer is in grace', () => {
      const rows = queryDb(db, "SELECT status FROM peers WHERE peer_id = 'silent'") as { status: string }[];
      return rows[0]?.status === 'disconnected';
    });
    expect(Date.now() - start).toBeLessThanOrEqual(2 * pingIntervalMs + 1_000);
    expect(queryDb(db, 'SELECT outcome FROM leases')).toEqual([{ outcome: null }]);
  });

  it('cuts off a peer that never reads once its buffered output passes the cap', async () => {
    server = await startServer({ dbPath: dir.file('slow.db'), maxBufferedBytes: 256 * 1024, rateLimitPerSec: 100_000, rateLimitBurst: 1_000_000, maxStrikes: 1000 });
    const slow = await connect(server);
    slow.send(helloFor('slow', flatSchema(1)));
    const assign = await slow.waitType('assign');
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // Every frame below earns a ~300-byte STALE_LEASE error it will never read.
    const frame = JSON.stringify({ type: 'step.finished', leaseId: `l_${'x'.repeat(120)}`, stepId: assign.stepId, ok: true, exitCode: 0, durationMs: 1 });
    const wss = server.built.app.websocketServer;
    for (let i = 0; i < 100_000 && wss.clients.size > 0; i++) {
      slow.socket.send(frame);
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    await until('the slow reader is cut off', () => wss.clients.size === 0, 20_000);
    await server.settle();
    expect(queryDb(dir.file('slow.db'), "SELECT status FROM peers WHERE peer_id = 'slow'")).toEqual([{ status: 'disconnected' }]);
  });

  const fuzzFrames = process.env.TASKSHARD_SOAK === '1' ? 1_000_000 : 100_000;
  it(`survives ${fuzzFrames} random frames: no crash, no unhandled rejection, state still consistent`, async () => {
    server = await startServer({ dbPath: dir.file('fuzz.db'), rateLimitPerSec: 100_000, rateLimitBurst: 1_000_000, maxStrikes: 1000 });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const schema = flatSchema(3);
      const valid = [
        helloFor('fz', schema),
        { type: 'step.finished', leaseId: 'l_1', stepId: 's1', ok: true, exitCode: 0, durationMs: 1 },
        { type: 'bye', reason: 'x' },
      ] as Record<string, unknown>[];
      let seed = 42;
      const rand = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % n;
      };
      const junkValues: unknown[] = [null, true, -1, 1e308, 'x'.repeat(3000), [], {}, [[[[]]]], { __proto__: 1 }, '\u0000', '\ud800', 'é', 2 ** 53 + 1];
      const randomFrame = (): string | Buffer => {
        switch (rand(6)) {
          case 0: {
            const bytes = Buffer.alloc(1 + rand(64));
            for (let i = 0; i < bytes.length; i++) bytes[i] = rand(128); // ASCII: valid UTF-8 text, rarely JSON
            return bytes.toString('latin1');
          }
          case 1:
            return JSON.stringify(junkValues[rand(junkValues.length)]);
          case 2: {
            const m = { ...valid[rand(valid.length)]! };
            const keys = Object.keys(m);
            delete m[keys[rand(keys.length)]!];
            return JSON.stringify(m);
          }
          case 3: {
            const m = { ...valid[rand(valid.length)]! };
            const keys = Object.keys(m);
            m[keys[rand(keys.length)]!] = junkValues[rand(junkValues.length)];
            return JSON.stringify(m);
          }
          case 4:
            return JSON.stringify({ ...valid[rand(valid.length)], [`k${rand(5)}`]: rand(10) });
          default:
            return JSON.stringify({ type: ['hello', 'step.finished', 'bye', 'welcome', 'assign', ''][rand(6)], peerId: `fz${rand(4)}` });
        }
      };
      const handled = async (): Promise<number> => {
        const values = (await server!.built.metrics.frames.get()).values;
        return values.filter((v) => v.labels.result !== 'ignored').reduce((n, v) => n + v.value, 0);
      };
      let conn = await connect(server);
      let connections = 1;
      while ((await handled()) < fuzzFrames) {
        if (conn.closeCode !== null || conn.socket.readyState !== WebSocket.OPEN) {
          conn = await connect(server);
          connections++;
        }
        for (let i = 0; i < 250; i++) conn.socket.send(randomFrame());
        // Frames on one connection are handled in order: once the marker is answered (or the
        // connection closed), every frame before it was handled.
        const from = conn.received.length;
        conn.send({ type: 'marker' });
        await Promise.race([conn.waitFor((m) => m.type === 'error' && m.message.startsWith('marker:'), from, 30_000), conn.closed(30_000)]);
      }
      await server.settle();
      expect(connections).toBeGreaterThan(1);
      const health = await fetch(`${server.httpUrl}/healthz`);
      expect(health.status).toBe(200);
      expect(unhandled).toEqual([]);
      // A well-behaved peer still gets served and completes.
      const good = await connect(server);
      good.send(helloFor('good', flatSchema(2, 'after-fuzz')));
      for (;;) {
        const m = await good.waitFor((x) => x.type === 'assign' || x.type === 'complete', good.received.length);
        if (m.type === 'complete') break;
        const a = m as Assign;
        good.send({ type: 'step.finished', leaseId: a.leaseId, stepId: a.stepId, ok: true, exitCode: 0, durationMs: 1 });
      }
      expect(queryDb(dir.file('fuzz.db'), 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 600_000);
});
