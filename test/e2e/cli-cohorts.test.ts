import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliPath, repoRoot, runCliAsync } from '../helpers/cli.js';
import { endPeerWorkspace, newPeerWorkspace, Proc, startAuthority, startPeer, untilLog, type PeerWorkspace } from '../helpers/peer-e2e.js';

/**
 * `taskshard cohorts` and `taskshard cohort ID [--watch]` against a real
 * authority process and real peers: what they print is what the run did.
 */
let ws: PeerWorkspace;
let watchers: Proc[] = [];
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-cli-cohorts-', 3);
});
afterEach(async () => {
  for (const w of watchers) w.kill();
  await Promise.all(watchers.map((w) => w.exit(5_000).catch(() => null)));
  watchers = [];
  await endPeerWorkspace(ws);
});

function watch(args: string[]): Proc {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: repoRoot, env: { ...process.env, TASKSHARD_TOKEN: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  const proc = new Proc('watch', child);
  watchers.push(proc);
  return proc;
}

describe('taskshard cohorts / cohort', () => {
  it('lists cohorts by repo, prints a run, and --watch follows it to its outcome', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db') });
    const peers = ['w1', 'w2'].map((name) => startPeer({ name, server: auth.wsUrl, schema: ws.schema, script: ws.script, env: { GATE: ws.gate } }));
    const id = (await peers[0]!.line(/joined cohort (\S+) as peer/))[1]!;
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    await untilLog(ws.log, 'two steps running', (lines) => lines.filter((l) => l.event === 'start').length === 2);

    const list = await runCliAsync(['cohorts', '--server', auth.httpUrl, '--repo', 'https://example.com/acme/mono.git'], { env: { ...process.env, TASKSHARD_TOKEN: '' } });
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^COHORT\s+SCHEMA\s+REPO\s+REFS\s+PIPELINE\s+PEERS\s+STEPS\s+OUTCOME\s+SAVED\s+CREATED$/);
    // The authority stores the repo normalized; --repo matches any spelling of it.
    expect(lines[1]).toMatch(new RegExp(`^${id}\\s+e2e\\s+example.com/acme/mono\\s+main\\s+independent\\s+2\\s+0/3\\s+running\\s+-\\s+`));
    expect((await runCliAsync(['cohorts', '--server', auth.httpUrl, '--repo', 'https://other.example/x.git'])).stdout).toBe('no cohorts of repo https://other.example/x.git\n');

    const watcher = watch(['cohort', id, '--server', auth.wsUrl, '--watch']);
    await watcher.line(new RegExp(`^cohort ${id}  running`, 'm'));
    writeFileSync(ws.gate, '');
    expect(await watcher.exit(20_000)).toBe(0);
    const last = watcher.stdout.slice(watcher.stdout.lastIndexOf(`cohort ${id}`));
    expect(last).toMatch(new RegExp(`^cohort ${id}  succeeded  \\(schema e2e, example.com/acme/mono main\\)$`, 'm'));
    expect(last).toContain(`page ${auth.httpUrl}/cohorts/${id}`);
    for (const step of ['s1', 's2', 's3']) expect(last).toMatch(new RegExp(`^${step}\\s+succeeded\\s+w[12]\\s+1\\s+`, 'm'));
    expect(last).toMatch(/^PEER\s+STATUS\s+BUILT/m);
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0]);

    const missing = await runCliAsync(['cohort', 'c_nope', '--server', auth.httpUrl]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/cohorts\/c_nope\/timeline: HTTP 404/);
  });
});
