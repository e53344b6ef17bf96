import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Assign } from '../../shared/protocol.js';
import { queryDb as readDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
let server: TestServer | null;
const peers: RawPeer[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-int-');
  server = null;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server?.close();
  dir.remove();
});

async function connect(s: TestServer): Promise<RawPeer> {
  const p = await RawPeer.connect(s.wsUrl);
  peers.push(p);
  return p;
}

/** Runs a peer: finishes every assign it gets until `complete`. */
async function work(p: RawPeer): Promise<string[]> {
  const built: string[] = [];
  let seen = 0;
  for (;;) {
    const m = await p.waitFor((x) => x.type === 'assign' || x.type === 'complete', seen);
    seen = p.received.indexOf(m) + 1;
    if (m.type === 'complete') return built;
    const a = m as Assign;
    built.push(a.stepId);
    p.send({ type: 'step.finished', leaseId: a.leaseId, stepId: a.stepId, ok: true, exitCode: 0, durationMs: 10 });
  }
}

describe('authority over real WebSockets and a real SQLite file', () => {
  it('3 peers x 6 steps: each step leased once, every peer completes', async () => {
    server = await startServer({ dbPath: dir.file('a.db') });
    const schema = flatSchema(6);
    const ps = await Promise.all([0, 1, 2].map(() => connect(server!)));
    ps.forEach((p, i) => p.send(helloFor(`peer-${i}`, schema)));
    const built = await Promise.all(ps.map(work));
    expect(built.flat().sort()).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
    await server.settle();
    expect(readDb(dir.file('a.db'), 'SELECT step_id, count(*) AS n FROM leases GROUP BY step_id HAVING n > 1')).toEqual([]);
    expect(readDb(dir.file('a.db'), "SELECT count(*) AS n FROM steps WHERE status = 'succeeded'")).toEqual([{ n: 6 }]);
    for (const p of ps) {
      const complete = await p.waitType('complete');
      expect(complete.outcome).toBe('succeeded');
      expect(complete.summary.builtHere.length + complete.summary.builtByOthers.length).toBe(6);
    }
  });

  it('a dropped peer\'s step is re-leased after the grace period', async () => {
    server = await startServer({ dbPath: dir.file('b.db'), leaseGraceSec: 30 });
    const schema = flatSchema(1);
    const a = await connect(server);
    a.send(helloFor('a', schema));
    const lease = await a.waitType('assign');
    const b = await connect(server);
    b.send(helloFor('b', schema));
    await b.waitType('wait');
    await a.kill();
    await server.settle();
    await server.advance(29_999);
    expect(b.received.some((m) => m.type === 'assign')).toBe(false);
    await server.advance(1);
    const relet = await b.waitType('assign');
    expect(relet).toMatchObject({ stepId: 's1', attempt: 2 });
    expect(relet.leaseId).not.toBe(lease.leaseId);
  });

  it('a reconnect within grace resumes the lease with the token', async () => {
    server = await startServer({ dbPath: dir.file('c.db'), leaseGraceSec: 30 });
    const schema = flatSchema(2);
    const a = await connect(server);
    a.send(helloFor('a', schema));
    const welcome = await a.waitType('welcome');
    const lease = await a.waitType('assign');
    await a.kill();
    await server.advance(10_000);
    const again = await connect(server);
    again.send(helloFor('a', schema, { resumeToken: welcome.resumeToken, currentStep: { stepId: lease.stepId, leaseId: lease.leaseId } }));
    const resumed = await again.waitType('welcome');
    expect(resumed).toMatchObject({ resumed: true, resumeToken: welcome.resumeToken, cohort: { id: welcome.cohort.id } });
    await server.advance(60_000);
    again.send({ type: 'step.finished', leaseId: lease.leaseId, stepId: lease.stepId, ok: true, exitCode: 0, durationMs: 5 });
    const next = await again.waitType('assign');
    expect(next.stepId).not.toBe(lease.stepId);
    expect(readDb(dir.file('c.db'), "SELECT count(*) AS n FROM leases WHERE outcome = 'lost'")).toEqual([{ n: 0 }]);
  });

  it('fences a stale completion: error STALE_LEASE and no row changes', async () => {
    server = await startServer({ dbPath: dir.file('d.db'), leaseGraceSec: 5 });
    const schema = flatSchema(1);
    const a = await connect(server);
    a.send(helloFor('a', schema));
    const welcome = await a.waitType('welcome');
    const old = await a.waitType('assign');
    const b = await connect(server);
    b.send(helloFor('b', schema));
    await a.kill();
    await server.settle();
    await server.advance(5_000);
    const relet = await b.waitType('assign');
    b.send({ type: 'step.finished', leaseId: relet.leaseId, stepId: 's1', ok: true, exitCode: 0, durationMs: 5 });
    await b.waitType('complete');
    const before = readDb(dir.file('d.db'), 'SELECT * FROM steps ORDER BY step_id');
    const again = await connect(server);
    again.send(helloFor('a', schema, { resumeToken: welcome.resumeToken }));
    await again.waitType('complete');
    again.send({ type: 'step.finished', leaseId: old.leaseId, stepId: 's1', ok: true, exitCode: 0, durationMs: 5 });
    const error = await again.waitType('error');
    expect(error).toMatchObject({ code: 'STALE_LEASE', retryable: false, leaseId: old.leaseId });
    await server.settle();
    expect(readDb(dir.file('d.db'), 'SELECT * FROM steps ORDER BY step_id')).toEqual(before);
  });

  it('restarting from the same database file keeps cohorts and leases; a peer resumes', async () => {
    const dbPath = dir.file('e.db');
    server = await startServer({ dbPath, leaseGraceSec: 30 });
    const schema = flatSchema(3);
    const a = await connect(server);
    a.send(helloFor('a', schema));
    const welcome = await a.waitType('welcome');
    const lease = await a.waitType('assign');
    a.send({ type: 'step.finished', leaseId: lease.leaseId, stepId: lease.stepId, ok: true, exitCode: 0, durationMs: 5 });
    const second = await a.waitFor((m) => m.type === 'assign' && m.leaseId !== lease.leaseId) as Assign;
    await server.close();
    expect(await a.closed()).toBe(1001);

    server = await startServer({ dbPath, leaseGraceSec: 30 }, { clock: server.clock });
    const back = await connect(server);
    back.send(helloFor('a', schema, { resumeToken: welcome.resumeToken, currentStep: { stepId: second.stepId, leaseId: second.leaseId } }));
    expect(await back.waitType('welcome')).toMatchObject({ resumed: true, cohort: { id: welcome.cohort.id, resolved: 1 } });
    back.send({ type: 'step.finished', leaseId: second.leaseId, stepId: second.stepId, ok: true, exitCode: 0, durationMs: 5 });
    const third = await back.waitType('assign');
    back.send({ type: 'step.finished', leaseId: third.leaseId, stepId: third.stepId, ok: true, exitCode: 0, durationMs: 5 });
    await back.waitType('complete');
    expect(readDb(dbPath, "SELECT count(*) AS n FROM steps WHERE status = 'succeeded'")).toEqual([{ n: 3 }]);
  });
});
