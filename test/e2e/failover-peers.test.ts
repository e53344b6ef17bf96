import { writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { get, upgrade } from '../helpers/http-probe.js';
import { startNginxBalancer, type NginxBalancer } from '../helpers/nginx-balancer.js';
import { countBy, endPeerWorkspace, freePort, newPeerWorkspace, readStepLog, spawnCli, startPeer, untilLog, type PeerWorkspace, type Proc } from '../helpers/peer-e2e.js';
import { postgresBinDir, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { requireTool } from '../helpers/tools.js';

/**
 * Peers through nginx to two authorities on one real PostgreSQL. The active
 * one dies (kill -9) or is restarted (SIGTERM, rolling) while every peer runs
 * a step; the standby takes over, the peers resume their leases there, every
 * peer exits 0 without failing open, and every step succeeded exactly once in
 * the database and ran exactly once.
 *
 * How nginx routes (open-source nginx has no active health checks): passive
 * failover. A standby answers every request, upgrades and `/readyz` included,
 * with 503; `proxy_next_upstream http_503` retries it on the next authority,
 * and a dead one's refused connection likewise. The routing test shows it in
 * nginx's own access log, before and after the active authority is killed.
 */
const pgBin = postgresBinDir();
const nginx = requireTool('nginx', ['nginx', '/usr/sbin/nginx']);
const all6 = { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, s6: 1 };

describe.skipIf(pgBin === null || nginx === null)('failover with peers (PostgreSQL, nginx)', () => {
  let cluster: PostgresCluster | null = null;
  let databases = 0;
  let ws: PeerWorkspace;
  let balancer: NginxBalancer | null = null;
  beforeAll(async () => {
    cluster = await startPostgresCluster(pgBin!);
  }, 120_000);
  afterAll(() => cluster?.stop());
  beforeEach(() => {
    ws = newPeerWorkspace('taskshard-failover-');
  });
  afterEach(async () => {
    await endPeerWorkspace(ws);
    await balancer?.stop();
    balancer = null;
  });

  function authority(name: string, db: string, port: number): Proc {
    const args = ['server', '--host', '127.0.0.1', '--port', String(port), '--db', db, '--leader-renew', '0.5', '--leader-ttl', '2', '--authority-id', name];
    return spawnCli(name, args, { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '', TASKSHARD_DB: '' });
  }
  const active = (p: Proc): Promise<RegExpMatchArray> => p.line(/"msg":"leader lease acquired: this authority is active"/, 30_000);

  async function setUp(): Promise<{ name: string; ports: [number, number]; a: Proc; b: Proc; peers: Proc[] }> {
    const name = `peers_${++databases}`;
    const db = cluster!.createDatabase(name);
    const ports: [number, number] = [await freePort(), await freePort()];
    const a = authority('auth-a', db, ports[0]);
    await active(a);
    const b = authority('auth-b', db, ports[1]);
    await b.line(/"msg":"on standby/, 30_000);
    balancer = await startNginxBalancer(nginx!, ports);
    const peers = ['p1', 'p2', 'p3'].map((peer) => startPeer({ name: peer, server: balancer!.wsUrl, schema: ws.schema, script: ws.script, env: { GATE: ws.gate } }));
    await Promise.all(peers.map((p) => p.line(/joined cohort/, 30_000)));
    await untilLog(ws.log, 'every peer running a step', (lines) => lines.filter((l) => l.event === 'start').length === 3);
    return { name, ports, a, b, peers };
  }

  async function expectEachStepOnce(name: string, peers: readonly Proc[]): Promise<void> {
    writeFileSync(ws.gate, '');
    expect(await Promise.all(peers.map((p) => p.exit(60_000)))).toEqual([0, 0, 0]);
    for (const p of peers) expect(p.stdout).not.toMatch(/FAILING OPEN/);
    const lines = readStepLog(ws.log);
    expect(countBy(lines, 'start')).toEqual(all6);
    expect(countBy(lines, 'done')).toEqual(all6);
    expect(cluster!.psql(name, "SELECT step_id, count(*) FROM steps WHERE status = 'succeeded' GROUP BY step_id ORDER BY step_id").trim().split('\n')).toEqual(
      Object.keys(all6).map((s) => `${s}|1`),
    );
    expect(cluster!.psql(name, "SELECT count(*) FROM steps WHERE status = 'succeeded' AND attempts = 1").trim()).toBe('6');
  }

  it('kill -9 of the active authority mid-run: the standby takes over, peers resume, each step succeeds once', async () => {
    const { name, a, b, peers } = await setUp();
    a.kill('SIGKILL');
    await active(b);
    await expectEachStepOnce(name, peers);
  }, 120_000);

  it('SIGSTOP of the active past its TTL: the standby takes over; on SIGCONT the old one is fenced and exits 1, no second success', async () => {
    const { name, a, b, peers } = await setUp();
    a.kill('SIGSTOP');
    await active(b);
    // The steps finish while the old authority is frozen: their reports wait in its sockets.
    writeFileSync(ws.gate, '');
    await untilLog(ws.log, 'the three running steps done', (lines) => lines.filter((l) => l.event === 'done').length >= 3);
    a.kill('SIGCONT');
    expect(await a.exit()).toBe(1);
    expect(a.stdout).toMatch(/"level":60[^\n]*("msg":"lost the leader lease|"msg":"commit failed)/);
    await expectEachStepOnce(name, peers);
  }, 120_000);

  it('rolling restart under load: SIGTERM hands over at once, twice, and nothing is lost or re-run', async () => {
    const { name, ports, a, b, peers } = await setUp();
    a.kill('SIGTERM');
    expect(await a.exit()).toBe(0);
    await active(b);
    // The restarted first authority stands by; then the second one restarts and hands back.
    const a2 = authority('auth-a2', cluster!.url(name), ports[0]);
    await a2.line(/"msg":"on standby/, 30_000);
    b.kill('SIGTERM');
    expect(await b.exit()).toBe(0);
    await active(a2);
    await expectEachStepOnce(name, peers);
    // Closed with 1012 (service restart), every peer reconnected at once instead of backing off.
    for (const p of peers) expect(p.stderr).toMatch(/reconnecting in 0 ms/);
  }, 120_000);

  it('routing: every request through nginx reaches the active authority (the standby\'s 503 is retried), before and after kill -9', async () => {
    const name = `routing_${++databases}`;
    const db = cluster!.createDatabase(name);
    const [portA, portB] = [await freePort(), await freePort()];
    const a = authority('auth-a', db, portA);
    await active(a);
    const b = authority('auth-b', db, portB);
    await b.line(/"msg":"on standby/, 30_000);
    // The standby listed first: round robin sends every other request to it first.
    balancer = await startNginxBalancer(nginx!, [portB, portA]);
    const lb = balancer;
    // What a balancer with active checks would probe: each authority's own /readyz.
    expect([(await get(portA, '/readyz')).status, (await get(portB, '/readyz')).status]).toEqual([200, 503]);
    const throughNginx = async (): Promise<void> => {
      // Three requests a round, so each kind of request lands on the standby first now and then.
      for (let i = 0; i < 4; i++) {
        const ready = await get(lb.port, '/readyz');
        expect([ready.status, JSON.parse(ready.body)]).toEqual([200, { status: 'active' }]);
        expect((await upgrade(lb.port)).status).toBe(101);
        expect((await upgrade(lb.port)).status).toBe(101);
      }
    };
    await throughNginx();
    const tried = (first: number, second: number, statuses: string): RegExp => new RegExp(`127\\.0\\.0\\.1:${first}, 127\\.0\\.0\\.1:${second} ${statuses}$`, 'm');
    let log = lb.accessLog();
    expect(log).toMatch(tried(portB, portA, '503, 200'));
    expect(log).toMatch(tried(portB, portA, '503, 101'));
    expect(log).not.toMatch(new RegExp(`^GET \\S+ 503 `, 'm'));

    a.kill('SIGKILL');
    await active(b);
    const before = log.length;
    await throughNginx();
    log = lb.accessLog().slice(before);
    // The dead one refuses connections (nginx logs 502 for it) and the request moves on to the new active one.
    expect(log).toMatch(tried(portA, portB, '502, 200'));
    expect(log).toMatch(tried(portA, portB, '502, 101'));
    expect([(await get(portB, '/readyz')).status]).toEqual([200]);
  }, 120_000);
});
