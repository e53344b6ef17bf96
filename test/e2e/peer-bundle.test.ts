import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { countBy, endPeerWorkspace, freePort, newPeerWorkspace, readStepLog, startAuthority, startPeer, type PeerWorkspace } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The peer from the authority: GET /peer.mjs is one self-contained file that
 * runs from an empty directory with nothing but Node.js and a stripped
 * environment, and the authority's other answers say where to go.
 */

let ws: PeerWorkspace;
let empty: ReturnType<typeof tempDir>;
const token = 'bundle-test-token-0123456789';

beforeEach(() => {
  ws = newPeerWorkspace('taskshard-peer-bundle-', 3);
  empty = tempDir('taskshard-empty-');
});

afterEach(async () => {
  empty.remove();
  await endPeerWorkspace(ws);
});

/** Runs `node peer.mjs ...` in the empty directory with only the given variables (no PATH, no HOME, no NODE_*). */
function runBundle(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [empty.file('peer.mjs'), ...args], { cwd: empty.path, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('GET /peer.mjs', () => {
  it('serves the bundled peer without a token; from an empty directory with a stripped environment it prints the version and shares work', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db'), env: { TASKSHARD_TOKEN: token } });
    const res = await fetch(`${auth.httpUrl}/peer.mjs`); // no Authorization header
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    const text = await res.text();
    writeFileSync(empty.file('peer.mjs'), text);
    // No server code and no native module made it into the file.
    expect(text).not.toMatch(/better-sqlite3|fastify|\.node['"]/);

    const health = (await (await fetch(`${auth.httpUrl}/healthz`)).json()) as { version: string };
    const version = await runBundle(['--version'], {});
    expect(version).toMatchObject({ code: 0, stdout: `${health.version}\n` });
    expect((await runBundle(['-v'], {})).stdout).toBe(`${health.version}\n`);

    // Configured by environment only; COMMAND is an absolute path (there is no PATH).
    writeFileSync(empty.file('schema.json'), readFileSync(ws.schema));
    const env = (name: string): Record<string, string> => ({
      TASKSHARD_SERVER: auth.wsUrl,
      TASKSHARD_SCHEMA: 'schema.json',
      TASKSHARD_CACHE_ID: 'bundle-cache',
      TASKSHARD_REPO: 'https://example.com/acme/mono.git',
      TASKSHARD_BASE_REF: 'main',
      TASKSHARD_BASE_SHA: 'abcdef0123456789',
      TASKSHARD_TOKEN: token,
      TASKSHARD_PEER_ID: name,
      PEER_NAME: name,
    });
    const peers = await Promise.all(['b1', 'b2'].map((name) => runBundle(['peer', '--', '/bin/sh', ws.script, '{step}', '{target}'], env(name))));
    for (const p of peers) {
      expect(p.code, p.stdout + p.stderr).toBe(0);
      expect(p.stdout).toMatch(/joined cohort c_/);
      expect(p.stdout).not.toMatch(/WARNING/); // same version, token accepted
    }
    expect(countBy(readStepLog(ws.log), 'done')).toEqual({ s1: 1, s2: 1, s3: 1 });
  });

  it('the npm pack tarball (how the README installs taskshard) carries the CLI and the peer bundle', () => {
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(pack.status, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const files = info!.files.map((f) => f.path);
    expect(info!.filename).toMatch(/^taskshard-\d+\.\d+\.\d+\.tgz$/);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'dist/cli/main.js', 'dist/peer.mjs', 'schemas/taskshard.schema.json']));
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/'))).toBe(false);
  });

  it('the installed CLI runs the peer without ever loading the server dependencies', () => {
    const hooks = `data:text/javascript,${encodeURIComponent(
      "export async function resolve(s, c, n) { if (/^(better-sqlite3|fastify|@fastify\\/|prom-client|pino)/.test(s)) throw new Error('peer loaded server dependency ' + s); return n(s, c); }",
    )}`;
    const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(hooks)});`)}`;
    const peer = spawnSync(process.execPath, ['--import', register, cliPath, 'peer', '--server', 'ws://127.0.0.1:1', '--schema', ws.schema, '--cache-id', 'c', '--repo', 'r', '--base-ref', 'main', '--connect-timeout', '0.5', '--no-universe', '--', '/bin/true'], { cwd: repoRoot, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(peer.stderr).not.toMatch(/server dependency/);
    expect(peer.status, peer.stdout + peer.stderr).toBe(0);
    // The hook does catch it: the server command loads them.
    const server = spawnSync(process.execPath, ['--import', register, cliPath, 'server', '--port', '0', '--db', ws.dir.file('x.db')], { cwd: repoRoot, encoding: 'utf8', timeout: 10_000 });
    expect(server.stderr).toMatch(/peer loaded server dependency (fastify|better-sqlite3|@fastify)/);
  });
});

/** The authority's `upgrade refused` log lines (JSON, one per line on its stdout). */
function refusedLogLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === 'upgrade refused');
}

/** `taskshard_upgrades_refused_total{reason}` from GET /metrics. */
async function refusedCount(httpUrl: string, reason: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const match = new RegExp(`^taskshard_upgrades_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

describe('the authority says where to go', () => {
  it('a plain GET of /v1/peer is 426 with a sentence; a 404 names the right paths; a peer at a wrong path fails open and its last line says so', async () => {
    const auth = await startAuthority({ db: ws.dir.file('b.db') });
    const plain = await fetch(`${auth.httpUrl}/v1/peer`);
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(((await plain.json()) as { error: { message: string } }).error.message).toMatch(/^\/v1\/peer is the WebSocket endpoint for taskshard peers, not a page: run a peer instead \(curl -fsSL http:\/\/127\.0\.0\.1:\d+\/peer\.mjs/);
    const lost = await fetch(`${auth.httpUrl}/v2/peer`);
    expect(lost.status).toBe(404);
    expect(((await lost.json()) as { error: { message: string } }).error.message).toMatch(/no route for GET \/v2\/peer\. Peers connect with a WebSocket to \/v1\/peer/);

    const report = ws.dir.file('p404.json');
    const peer = startPeer({ name: 'p404', server: `${auth.wsUrl}/v2/peer`, schema: ws.schema, script: ws.script, args: ['--report', report] });
    expect(await peer.exit()).toBe(0);
    // --report says it failed open on a refusal, and why.
    const r = JSON.parse(readFileSync(report, 'utf8')) as { mode: string; failOpen: { cause: string; reason: string } };
    expect(r).toMatchObject({ mode: 'local', failOpen: { cause: 'refused' } });
    expect(r.failOpen.reason).toMatch(/HTTP 404: no route for GET \/v2\/peer\. Peers connect with a WebSocket to \/v1\/peer/);
    expect(peer.stdout).toMatch(/WARNING: FAILING OPEN: the authority refused this peer \(HTTP 404: no route for GET \/v2\/peer\. Peers connect with a WebSocket to \/v1\/peer/);
    expect(peer.stdout.trim().split('\n').pop()).toMatch(/^taskshard: exit 0: every step resolved and the universe built \(FAILED OPEN, nothing shared: the authority refused this peer \(HTTP 404/);
    // The authority logged the refused upgrade and counted it by reason (its log line may reach us after the peer's exit).
    await auth.proc.until('the refused upgrade in the log', () => refusedLogLines(auth.proc.stdout).some((l) => l['url'] === '/v2/peer'));
    expect(refusedLogLines(auth.proc.stdout)).toContainEqual(expect.objectContaining({ reason: 'not-found', status: 404, url: '/v2/peer' }));
    expect(await refusedCount(auth.httpUrl, 'not-found')).toBeGreaterThanOrEqual(1);
    // A plain GET of a missing page is no refused upgrade.
    expect(refusedLogLines(auth.proc.stdout).filter((l) => l['url'] !== '/v2/peer')).toEqual([]);
  });

  it('--strict on a refused token exits 2 with a GitHub annotation, or a GitLab error line', async () => {
    const auth = await startAuthority({ db: ws.dir.file('c.db'), env: { TASKSHARD_TOKEN: token } });
    // A plain GET is no upgrade: 426 and the sentence whatever its token (it reveals nothing), never 401.
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Bearer ${token}` }] as Record<string, string>[]) {
      const plain = await fetch(`${auth.httpUrl}/v1/peer`, { headers });
      expect(plain.status).toBe(426);
      expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('UPGRADE_REQUIRED');
    }
    const github = startPeer({ name: 'gh', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--strict'], env: { TASKSHARD_TOKEN: 'wrong-token-0123456789', GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '1', GITHUB_JOB: 'b' } });
    expect(await github.exit()).toBe(2);
    expect(github.stdout).toMatch(/^::error title=taskshard::the authority REFUSED this peer \(--strict\): the authority refused this peer's token \(HTTP 401/m);
    const gitlab = startPeer({ name: 'gl', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--strict'], env: { TASKSHARD_TOKEN: 'wrong-token-0123456789', GITLAB_CI: 'true', CI_JOB_ID: '9' } });
    expect(await gitlab.exit()).toBe(2);
    expect(gitlab.stdout).toContain("\x1b[31;1mERROR: taskshard: the authority REFUSED this peer (--strict): the authority refused this peer's token (HTTP 401");
    expect(readStepLog(ws.log)).toEqual([]);
    // Both refusals are in the authority's log and its metric, with the reason (the log lines may reach us after the peers' exits).
    const unauthorized = (): Record<string, unknown>[] => refusedLogLines(auth.proc.stdout).filter((l) => l['reason'] === 'unauthorized' && l['status'] === 401);
    await auth.proc.until('both refused upgrades in the log', () => unauthorized().length >= 2);
    expect(refusedLogLines(auth.proc.stdout).filter((l) => l['reason'] === 'unauthorized' && l['status'] === 401)).toHaveLength(2);
    expect(await refusedCount(auth.httpUrl, 'unauthorized')).toBe(2);
  });

  it('a peer warns when the authority runs another version', async () => {
    const port = await freePort();
    const fake = new WebSocketServer({ host: '127.0.0.1', port });
    fake.on('connection', (socket) => {
      socket.on('message', () => {
        socket.send(JSON.stringify({ type: 'welcome', protocol: 1, peerId: 'v1', resumeToken: 'rt_x', resumed: false, cohort: { id: 'c_x', peers: 1, steps: 3, resolved: 3, succeeded: [] }, pingIntervalMs: 15000, server: { name: 'taskshard', version: '9.9.9' } }));
        socket.send(JSON.stringify({ type: 'complete', cohortId: 'c_x', outcome: 'succeeded', summary: { builtHere: [], builtByOthers: [], fromMemo: ['s1', 's2', 's3'], failed: [], savedSec: 0 } }));
      });
    });
    try {
      const peer = startPeer({ name: 'v1', server: `ws://127.0.0.1:${port}`, schema: ws.schema, script: ws.script, args: ['--no-universe'] });
      expect(await peer.exit()).toBe(0);
      expect(peer.stdout).toMatch(new RegExp(`WARNING: this peer is taskshard ${JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')).version.replace(/\./g, '\\.')} but the authority is 9\\.9\\.9; get the matching peer: curl -fsSL http://127\\.0\\.0\\.1:${port}/peer\\.mjs -o peer\\.mjs`));
    } finally {
      for (const c of fake.clients) c.terminate();
      await new Promise((r) => fake.close(r));
    }
  });
});

