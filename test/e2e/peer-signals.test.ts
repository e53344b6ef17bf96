import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { endPeerWorkspace, newPeerWorkspace, startAuthority, startPeer, waitUntil, withoutCiEnv, type PeerWorkspace } from '../helpers/peer-e2e.js';

/**
 * Never silent, never orphaned, and a COMMAND that cannot run is caught before
 * hello — all through the real CLI. Each step here starts a grandchild in its
 * process group and writes both pids; after the peer exits, neither may be alive.
 */

let ws: PeerWorkspace;
let stepScript: string;
let pids: string;

beforeEach(() => {
  ws = newPeerWorkspace('taskshard-peer-signals-', 2);
  pids = ws.dir.file('pids');
  stepScript = ws.dir.file('stubborn.sh');
  writeFileSync(
    stepScript,
    [
      '#!/bin/sh',
      // With IGNORE_TERM the step and its grandchild shrug off SIGTERM: only SIGKILL ends them.
      'if [ -n "$IGNORE_TERM" ]; then trap "" TERM; fi',
      `sh -c 'if [ -n "$IGNORE_TERM" ]; then trap "" TERM; fi; while :; do sleep 0.05; done' &`,
      `echo "$$ $!" >> '${pids}'`,
      'while :; do echo "tick $1"; sleep 0.05; done',
      '',
    ].join('\n'),
  );
  chmodSync(stepScript, 0o755);
});

afterEach(async () => {
  // Whatever a failing test left behind.
  for (const pid of stepPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await endPeerWorkspace(ws);
});

function stepPids(): number[] {
  if (!existsSync(pids)) return [];
  return readFileSync(pids, 'utf8').split(/\s+/).filter(Boolean).map(Number);
}

/** Dead or a zombie (reaped later by init): either way nothing of it runs. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function peerLeft(httpUrl: string, peerId: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const body = (await (await fetch(`${httpUrl}/api/v1/peers?limit=100`)).json()) as { peers: { peerId: string; status: string }[] };
    const status = body.peers.find((p) => p.peerId === peerId)?.status;
    if (status === 'left') return;
    if (Date.now() > deadline) throw new Error(`peer ${peerId} did not leave with bye (status ${status})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('taskshard peer: signals, closed stdout, progress', () => {
  it('one SIGINT stops the step, says bye and exits 130; nothing of the step survives', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db') });
    const peer = startPeer({ name: 'sig1', server: auth.wsUrl, schema: ws.schema, script: stepScript });
    await peer.line(/tick s\d/);
    await waitUntil('both pids written', () => stepPids().length === 2);
    peer.child.kill('SIGINT');
    expect(await peer.exit()).toBe(130);
    expect(peer.stdout).toMatch(/exit 1: interrupted; the running step was stopped/);
    for (const pid of stepPids()) expect(isDead(pid), `pid ${pid}`).toBe(true);
    await peerLeft(auth.httpUrl, 'sig1');
  });

  it('a second SIGINT kills a step that ignores SIGTERM at once (no 5 s grace), exits 130, nothing survives', async () => {
    const auth = await startAuthority({ db: ws.dir.file('b.db') });
    const peer = startPeer({ name: 'sig2', server: auth.wsUrl, schema: ws.schema, script: stepScript, env: { IGNORE_TERM: '1' } });
    await peer.line(/tick s\d/);
    await waitUntil('both pids written', () => stepPids().length === 2);
    peer.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300)); // the first signal's SIGTERM is ignored by the step
    expect(stepPids().every((pid) => !isDead(pid))).toBe(true);
    const secondAt = Date.now();
    peer.child.kill('SIGINT');
    expect(await peer.exit()).toBe(130);
    expect(Date.now() - secondAt).toBeLessThan(4_000);
    for (const pid of stepPids()) expect(isDead(pid), `pid ${pid}`).toBe(true);
    await peerLeft(auth.httpUrl, 'sig2');
  });

  it('two SIGTERMs: the same, with exit 143', async () => {
    const auth = await startAuthority({ db: ws.dir.file('c.db') });
    const peer = startPeer({ name: 'sig3', server: auth.wsUrl, schema: ws.schema, script: stepScript, env: { IGNORE_TERM: '1' } });
    await peer.line(/tick s\d/);
    await waitUntil('both pids written', () => stepPids().length === 2);
    peer.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    peer.child.kill('SIGTERM');
    expect(await peer.exit()).toBe(143);
    for (const pid of stepPids()) expect(isDead(pid), `pid ${pid}`).toBe(true);
    await peerLeft(auth.httpUrl, 'sig3');
  });

  it('a closed stdout (| head) ends the step too; nothing survives', async () => {
    const auth = await startAuthority({ db: ws.dir.file('d.db') });
    const child = spawn(
      process.execPath,
      [cliPath, 'peer', '--server', auth.wsUrl, '--schema', ws.schema, '--cache-id', 'c', '--peer-id', 'head1', '--repo', 'https://example.com/a/b', '--base-ref', 'main', '--', stepScript, '{step}'],
      { cwd: repoRoot, env: { ...withoutCiEnv(process.env), TASKSHARD_TOKEN: '', IGNORE_TERM: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout.setEncoding('utf8');
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: string) => {
        out += d;
        // Like `| head -n 3`: read a few lines, then close the pipe.
        if (out.split('\n').length > 3 && /tick/.test(out)) {
          child.stdout.destroy();
          resolve();
        }
      });
    });
    await waitUntil('both pids written', () => stepPids().length === 2);
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))])).toBe(1);
    for (const pid of stepPids()) expect(isDead(pid), `pid ${pid}`).toBe(true);
    await peerLeft(auth.httpUrl, 'head1');
  });

  it('while waiting, a progress line at least every --progress-interval, naming what runs where and since when (the true lease age)', async () => {
    const auth = await startAuthority({ db: ws.dir.file('e.db') });
    // One step: the first peer holds it (gated); the others have nothing to do but wait.
    writeFileSync(ws.schema, JSON.stringify({ id: 'one', universe: '//...', steps: [{ id: 'perception', target: '//p/...', estimateSec: 900 }] }));
    const holder = startPeer({ name: 'ci-7', server: auth.wsUrl, schema: ws.schema, script: ws.script, env: { GATE: ws.gate } });
    await holder.line(/step perception assigned/);
    const early = startPeer({ name: 'w1', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--progress-interval', '1'] });
    await early.line(/taskshard: waiting: 0\/1 resolved; perception held by ci-7 for [\d.]+ s, est\. 15m 00s/, 10_000);
    // Once the lease is at least 5 s old, a late waiter's first line already says so: the age comes from the
    // authority (lease start), not from when this peer first saw the step (which would say about 1 s).
    const heldSec = (text: string): number[] => [...text.matchAll(/perception held by ci-7 for ([\d.]+) s/g)].map((m) => Number(m[1]));
    await early.until('a lease age of 5 s', () => heldSec(early.stdout).some((s) => s >= 5), 15_000);
    const late = startPeer({ name: 'w2', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--progress-interval', '1'] });
    await late.line(/perception held by ci-7 for [\d.]+ s/, 10_000);
    expect(heldSec(late.stdout)[0]).toBeGreaterThanOrEqual(5);
    // The one-off line printed on the first `wait` frame carries the same age (heldMs from the authority).
    const oneOff = late.stdout.match(/taskshard: waiting on step perception held by peer ci-7 for ([\d.]+) s \(1 step unresolved\)/);
    expect(oneOff, late.stdout).not.toBeNull();
    expect(Number(oneOff![1])).toBeGreaterThanOrEqual(5);
    writeFileSync(ws.gate, '');
    expect(await Promise.all([holder.exit(), early.exit(), late.exit()])).toEqual([0, 0, 0]);
  });
});

describe('taskshard peer: COMMAND preflight', () => {
  it('a COMMAND not on PATH, or not executable, is exit 2 naming it, before hello (the authority never sees the peer)', async () => {
    const auth = await startAuthority({ db: ws.dir.file('f.db') });
    const base = ['peer', '--server', auth.wsUrl, '--schema', ws.schema, '--cache-id', 'c', '--repo', 'r', '--base-ref', 'main', '--'];
    const env = { ...withoutCiEnv(process.env), TASKSHARD_TOKEN: '' };
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(process.execPath, [cliPath, ...base, ...args], { cwd: ws.dir.path, env });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (code) => resolve({ code, stderr }));
      });
    const missing = await run(['no-such-build-tool-xyz', '{target}']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^taskshard peer: COMMAND: no-such-build-tool-xyz: not found on PATH/m);
    writeFileSync(ws.dir.file('build.sh'), '#!/bin/sh\nexit 0\n');
    const notExec = await run(['./build.sh']);
    expect(notExec.code).toBe(2);
    expect(notExec.stderr).toMatch(/COMMAND: \.\/build\.sh: is not executable/);
    const peers = (await (await fetch(`${auth.httpUrl}/api/v1/peers`)).json()) as { peers: unknown[] };
    expect(peers.peers).toEqual([]);
  });

  it('a COMMAND that cannot start on a lease says "could not start (ENOENT)", releases the lease (not a failure) and exits 2; another peer builds the step', async () => {
    const auth = await startAuthority({ db: ws.dir.file('g.db') });
    // The tool vanishes between the preflight and the first lease (a broken runner image would look the same).
    const vanishing = ws.dir.file('vanishing.sh');
    writeFileSync(vanishing, '#!/bin/sh\nexit 0\n');
    chmodSync(vanishing, 0o755);
    const good = startPeer({ name: 'good', server: auth.wsUrl, schema: ws.schema, script: ws.script, env: { GATE: ws.gate } });
    await good.line(/step s\d assigned/);
    const broken = spawn(
      process.execPath,
      [cliPath, 'peer', '--server', auth.wsUrl, '--schema', ws.schema, '--cache-id', 'e2e-cache', '--peer-id', 'broken', '--repo', 'https://example.com/acme/mono.git', '--base-ref', 'main', '--', vanishing, '{step}'],
      { cwd: repoRoot, env: { ...withoutCiEnv(process.env), TASKSHARD_TOKEN: '' } },
    );
    let out = '';
    broken.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/peer broken: schema/.test(out) && existsSync(vanishing)) unlinkSync(vanishing);
    });
    const code = await new Promise<number | null>((resolve) => broken.on('close', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(out).toMatch(/step s\d could not start \(ENOENT\); releasing it for another peer/);
    expect(out).toMatch(/exit 2: COMMAND could not start \(ENOENT\) for step s\d; its lease was released for another peer, not failed/);
    writeFileSync(ws.gate, '');
    expect(await good.exit()).toBe(0);
    expect(good.stdout).not.toMatch(/FAILED/);
    expect(good.stdout).toMatch(/built here 2/);
  });
});
