import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { get, upgrade, type HttpAnswer } from '../helpers/http-probe.js';
import { postgresBinDir, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { freePort, killAll, spawnCli, waitUntil, type Proc } from '../helpers/peer-e2e.js';

/**
 * Two authorities on one real PostgreSQL: one active, one standby (probes,
 * refused upgrades); kill -9 of the active lets the standby take over; SIGTERM
 * hands over at once (lease row released); an active stopped past its TTL
 * (SIGSTOP) is deposed and exits 1 when it runs again.
 */
const pgBin = postgresBinDir();

/** Polls a probe until it answers `status` (the processes announce nothing for it). */
async function untilStatus(port: number, path: string, status: number, timeoutMs = 20_000): Promise<HttpAnswer> {
  let last: HttpAnswer | null = null;
  return waitUntil(
    `${path} on :${port} to answer ${status}`,
    () => {
      void get(port, path).then(
        (a) => (last = a),
        () => (last = null),
      );
      return last?.status === status ? last : null;
    },
    timeoutMs,
    () => `; last answer: ${JSON.stringify(last)}`,
  );
}

describe.skipIf(pgBin === null)('failover between two authorities on PostgreSQL', () => {
  let cluster: PostgresCluster | null = null;
  let databases = 0;
  beforeAll(async () => {
    cluster = await startPostgresCluster(pgBin!);
  }, 120_000);
  afterAll(() => cluster?.stop());
  afterEach(async () => {
    await killAll();
  });

  async function authority(name: string, db: string, port: number): Promise<Proc> {
    const args = ['server', '--host', '127.0.0.1', '--port', String(port), '--db', db, '--log-level', 'info', '--leader-renew', '0.5', '--leader-ttl', '2', '--authority-id', name];
    return spawnCli(name, args, { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '', TASKSHARD_DB: '' });
  }

  it('one is active, the other stands by; kill -9 of the active lets the standby take over', async () => {
    const db = cluster!.createDatabase(`failover_${++databases}`);
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await authority('auth-a', db, portA);
    await a.line(/"msg":"leader lease acquired: this authority is active"/, 30_000);
    const b = await authority('auth-b', db, portB);
    await b.line(/"msg":"on standby: another authority is active"/, 30_000);

    expect((await get(portA, '/readyz')).status).toBe(200);
    expect((await get(portB, '/livez')).status).toBe(200);
    const ready = await get(portB, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'standby', active: 'auth-a' });
    const health = await get(portB, '/healthz');
    expect(JSON.parse(health.body)).toEqual({ status: 'standby', active: 'auth-a' });
    const refused = await upgrade(portB);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect((await upgrade(portA)).status).toBe(101);

    a.kill('SIGKILL');
    await b.line(/"msg":"leader lease acquired: this authority is active"/, 30_000);
    await untilStatus(portB, '/readyz', 200);
    expect(cluster!.psql(`failover_${databases}`, 'SELECT term, holder FROM leader_lease').trim()).toBe('2|auth-b');
  }, 90_000);

  it('SIGTERM on the active releases the lease row, the standby takes over at once, the old one exits 0', async () => {
    const name = `failover_${++databases}`;
    const db = cluster!.createDatabase(name);
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await authority('auth-a', db, portA);
    await a.line(/"msg":"leader lease acquired/, 30_000);
    // A long TTL: only the release can explain a quick takeover.
    const b = spawnCli('auth-b', ['server', '--host', '127.0.0.1', '--port', String(portB), '--db', db, '--leader-renew', '0.2', '--leader-ttl', '600', '--authority-id', 'auth-b'], { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_DB: '' });
    await b.line(/"msg":"on standby/, 30_000);
    a.kill('SIGTERM');
    expect(await a.exit()).toBe(0);
    expect(a.stdout).toMatch(/"msg":"leader lease released: a standby takes over now"/);
    await b.line(/"msg":"leader lease acquired/, 30_000);
    expect(cluster!.psql(name, 'SELECT term, holder FROM leader_lease').trim()).toBe('2|auth-b');
  }, 90_000);

  it('an active one stopped past its TTL is deposed: when it runs again it stops with exit 1', async () => {
    const name = `failover_${++databases}`;
    const db = cluster!.createDatabase(name);
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await authority('auth-a', db, portA);
    await a.line(/"msg":"leader lease acquired/, 30_000);
    const b = await authority('auth-b', db, portB);
    await b.line(/"msg":"on standby/, 30_000);
    a.kill('SIGSTOP');
    await b.line(/"msg":"leader lease acquired/, 30_000);
    a.kill('SIGCONT');
    expect(await a.exit()).toBe(1);
    expect(a.stdout).toMatch(/"level":60[^\n]*("msg":"lost the leader lease|"msg":"commit failed)/);
    expect(cluster!.psql(name, 'SELECT term, holder FROM leader_lease').trim()).toBe('2|auth-b');
    expect((await get(portB, '/readyz')).status).toBe(200);
  }, 90_000);
});
