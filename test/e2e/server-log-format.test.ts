import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { newPeerWorkspace, endPeerWorkspace, Proc, startPeer, type PeerWorkspace } from '../helpers/peer-e2e.js';

/** `taskshard server --log-format pretty`: one human line per event on stdout. */
let ws: PeerWorkspace | null = null;
let server: Proc | null = null;
afterEach(async () => {
  server?.kill();
  await server?.exit(5_000).catch(() => null);
  server = null;
  if (ws) await endPeerWorkspace(ws);
  ws = null;
});

describe('taskshard server --log-format pretty', () => {
  it('prints the start-up and lifecycle lines as text, with their fields', async () => {
    ws = newPeerWorkspace('taskshard-pretty-', 1);
    const child = spawn(process.execPath, [cliPath, 'server', '--port', '0', '--db', ws.dir.file('a.db'), '--log-format', 'pretty'], {
      cwd: repoRoot,
      env: { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end();
    server = new Proc('server', child);
    const port = (await server.line(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}taskshard authority listening {2}url=http:\/\/127\.0\.0\.1:(\d+) /m))[1];
    const peer = startPeer({ name: 'solo', server: `ws://127.0.0.1:${port}`, schema: ws.schema, script: ws.script });
    expect(await peer.exit()).toBe(0);
    await server.line(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}peer left {2}cohortId=c_\S+ repo=example\.com\/acme\/mono peerId=solo$/m);
    expect(server.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}step succeeded {2}cohortId=c_\S+ repo=\S+ peerId=solo stepId=s1 detail="\d+ ms, attempt 1"$/m);
    expect(server.stdout).not.toMatch(/^\{/m);
  });
});
