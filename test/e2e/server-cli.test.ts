import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { queryDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { killAll, startAuthority, type Authority } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-cli-server-');
});
afterEach(async () => {
  await killAll();
  dir.remove();
});

const peerUrl = (a: Authority): string => `${a.wsUrl}/v1/peer`;
const output = (a: Authority): string => a.proc.stdout + a.proc.stderr;

describe('taskshard server', () => {
  it('serves /healthz with its defaults and a fresh database file', async () => {
    const proc = await startAuthority({ db: dir.file('fresh.db') });
    const res = await fetch(`${proc.httpUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
    expect(output(proc)).toContain('no peer token: accepting peers without auth on loopback only');
  });

  it('drains on SIGTERM: the completion it received is committed, peers get 1001, exit 0 within 5 s', async () => {
    const db = dir.file('drain.db');
    const proc = await startAuthority({ db });
    const peer = await RawPeer.connect(peerUrl(proc));
    peer.send(helloFor('p', flatSchema(2)));
    const assign = await peer.waitType('assign');
    peer.send({ type: 'step.finished', leaseId: assign.leaseId, stepId: assign.stepId, ok: true, exitCode: 0, durationMs: 4 });
    await peer.waitType('step.update');
    const started = Date.now();
    proc.proc.kill('SIGTERM');
    expect(await peer.closed()).toBe(1001);
    expect(await proc.proc.exit()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(queryDb(db, "SELECT step_id, built_by AS peer_id FROM steps WHERE status = 'succeeded'")).toEqual([{ step_id: assign.stepId, peer_id: 'p' }]);
    expect(queryDb(db, 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
  });

  it('rejects bad configuration with every problem named by its flag, exit 2', () => {
    const result = runCli(['server', '--host', '0.0.0.0', '--db', dir.file('x.db')], { env: { ...process.env, TASKSHARD_TOKEN: '' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--host: refusing to bind 0.0.0.0 without a peer token: set TASKSHARD_TOKEN or --token-file, or pass --insecure-bind');
    const port = runCli(['server', '--port', '99999']);
    expect(port.code).toBe(2);
    expect(port.stderr).toContain("option '--port <port>' argument '99999' is invalid. expected an integer from 0 to 65535, got 99999");
    const short = runCli(['server', '--db', dir.file('y.db')], { env: { ...process.env, TASKSHARD_TOKEN: 'short' } });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('TASKSHARD_TOKEN / --token-file: must be at least 16 characters');
  });

  it('never logs the tokens, even when a peer presents a wrong one', async () => {
    const token = 'super-secret-peer-token-4242';
    const admin = 'super-secret-admin-token-4242';
    const proc = await startAuthority({ db: dir.file('tok.db'), args: ['--log-level', 'trace'], env: { TASKSHARD_TOKEN: token, TASKSHARD_ADMIN_TOKEN: admin } });
    await expect(RawPeer.connect(peerUrl(proc), { token: 'wrong-token-presented-1234' })).rejects.toThrow('HTTP 401');
    const ok = await RawPeer.connect(peerUrl(proc), { token });
    ok.send(helloFor('p', flatSchema(1)));
    await ok.waitType('assign');
    await fetch(`${proc.httpUrl}/api/v1/cohorts/x/cancel`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
    await ok.close();
    proc.proc.kill('SIGTERM');
    await proc.proc.exit();
    const logged = output(proc);
    expect(logged.length).toBeGreaterThan(0);
    expect(logged).not.toContain(token);
    expect(logged).not.toContain(admin);
    expect(logged).not.toContain('wrong-token-presented-1234');
  });
});
