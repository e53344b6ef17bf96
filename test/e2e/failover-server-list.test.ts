import { writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countBy, endPeerWorkspace, freePort, newPeerWorkspace, readStepLog, spawnCli, startPeer, untilLog, withoutCiEnv, type PeerWorkspace, type Proc } from '../helpers/peer-e2e.js';
import { postgresBinDir, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';

/**
 * Peers given both authorities (`--server A,B`, repeated `--server`, or
 * `TASKSHARD_SERVER=A,B`) and NO load balancer, on one real PostgreSQL. The
 * active authority dies (kill -9) while every peer runs a step; each peer
 * moves to the other one once it has taken over, resumes its lease there, and
 * exits 0 without failing open; every step succeeded exactly once in the
 * database, at attempt 1, and ran exactly once.
 */
const pgBin = postgresBinDir();
const all6 = { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, s6: 1 };

describe.skipIf(pgBin === null)('peers with a list of authorities (PostgreSQL, no load balancer)', () => {
  let cluster: PostgresCluster | null = null;
  let ws: PeerWorkspace;
  beforeAll(async () => {
    cluster = await startPostgresCluster(pgBin!);
  }, 120_000);
  afterAll(() => cluster?.stop());
  beforeEach(() => {
    ws = newPeerWorkspace('taskshard-server-list-');
  });
  afterEach(() => endPeerWorkspace(ws));

  function authority(name: string, db: string, port: number): Proc {
    const args = ['server', '--host', '127.0.0.1', '--port', String(port), '--db', db, '--leader-renew', '0.5', '--leader-ttl', '2', '--authority-id', name];
    return spawnCli(name, args, { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '', TASKSHARD_DB: '' });
  }
  const active = (p: Proc): Promise<RegExpMatchArray> => p.line(/"msg":"leader lease acquired: this authority is active"/, 30_000);

  async function twoAuthorities(name: string): Promise<{ a: Proc; b: Proc; urlA: string; urlB: string }> {
    const db = cluster!.createDatabase(name);
    const [portA, portB] = [await freePort(), await freePort()];
    const a = authority('auth-a', db, portA);
    await active(a);
    const b = authority('auth-b', db, portB);
    await b.line(/"msg":"on standby/, 30_000);
    return { a, b, urlA: `ws://127.0.0.1:${portA}`, urlB: `ws://127.0.0.1:${portB}` };
  }

  it('kill -9 of the active one mid-run: every peer moves to the other, resumes, exits 0; each step succeeds once at attempt 1', async () => {
    const { a, b, urlA, urlB } = await twoAuthorities('server_list_kill');
    const env = { GATE: ws.gate };
    const peers = [
      startPeer({ name: 'p1', server: `${urlA},${urlB}`, schema: ws.schema, script: ws.script, env }),
      startPeer({ name: 'p2', server: urlA, args: ['--server', urlB], schema: ws.schema, script: ws.script, env }),
      // Listed the other way round: the standby first. The peer goes on to the active one.
      startPeer({ name: 'p3', server: `${urlB},${urlA}`, schema: ws.schema, script: ws.script, env }),
    ];
    await Promise.all(peers.map((p) => p.line(/joined cohort/, 30_000)));
    await untilLog(ws.log, 'every peer running a step', (lines) => lines.filter((l) => l.event === 'start').length === 3);
    expect(peers[2]!.stderr).toContain(`connection to the authority at ${urlB}/v1/peer ended: HTTP 503: this authority is on standby`);

    a.kill('SIGKILL');
    await active(b);
    await Promise.all(peers.map((p) => p.line(/reconnected and resumed in cohort/, 30_000)));
    writeFileSync(ws.gate, '');
    expect(await Promise.all(peers.map((p) => p.exit(60_000)))).toEqual([0, 0, 0]);

    const portB = new URL(urlB).port;
    for (const p of peers) {
      expect(p.stdout).not.toMatch(/FAILING OPEN|FAILED OPEN/);
      expect(p.stdout).toContain(`lost the authority at ${urlA}/v1/peer`);
      expect(p.stdout).toMatch(new RegExp(`reconnected and resumed in cohort \\S+ \\(.*\\), now on ws://127\\.0\\.0\\.1:${portB}/v1/peer`));
      expect(p.stdout).toMatch(new RegExp(`cohort page: http://127\\.0\\.0\\.1:${portB}/cohorts/\\S+ \\(the active authority changed\\)`));
      expect(p.stdout).not.toMatch(/attempt 2/);
    }
    const lines = readStepLog(ws.log);
    expect(countBy(lines, 'start')).toEqual(all6);
    expect(countBy(lines, 'done')).toEqual(all6);
    const psql = (sql: string): string => cluster!.psql('server_list_kill', sql).trim();
    expect(psql("SELECT step_id, count(*) FROM steps WHERE status = 'succeeded' GROUP BY step_id ORDER BY step_id").split('\n')).toEqual(Object.keys(all6).map((s) => `${s}|1`));
    expect(psql("SELECT count(*) FROM steps WHERE status = 'succeeded' AND attempts = 1")).toBe('6');
  }, 150_000);

  it('--check over TASKSHARD_SERVER=A,B: the active one accepts, the standby is reported, exit 0; none active: exit 2', async () => {
    const { urlA, urlB } = await twoAuthorities('server_list_check');
    const dead = `ws://127.0.0.1:${await freePort()}`;
    const check = (servers: string): Proc =>
      spawnCli('check', ['peer', '--check', '--schema', ws.schema, '--cache-id', 'c', '--repo', 'https://example.com/r.git', '--base-ref', 'main', '--peer-id', 'k1', '--connect-timeout', '5', '--', '/bin/sh', ws.script], {
        ...withoutCiEnv(process.env),
        TASKSHARD_TOKEN: '',
        TASKSHARD_SERVER: servers,
      });
    const ok = check(`${urlB}, ${urlA}`);
    expect(await ok.exit(30_000)).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`check ok: authority 127\\.0\\.0\\.1:${new URL(urlB).port} is on standby \\(active: auth-a\\)`));
    expect(ok.stdout).toContain(`check ok: WebSocket ${urlB}/v1/peer answers HTTP 503: this authority is on standby (a standby`);
    expect(ok.stdout).toContain(`check ok: WebSocket ${urlA}/v1/peer accepted this peer (no token sent)`);

    // The standby and a dead one: nobody would take this peer.
    const none = check(`${urlB},${dead}`);
    expect(await none.exit(30_000)).toBe(2);
    expect(none.stdout).toContain(`check WARNING: WebSocket ${dead}/v1/peer unreachable`);
    expect(none.stdout).toContain('check FAILED: none of the 2 authorities accepted this peer');
  }, 120_000);
});
