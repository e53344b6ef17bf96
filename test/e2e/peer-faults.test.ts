import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { tempDir } from '../helpers/temp-dir.js';
import {
  countBy,
  freePort,
  endPeerWorkspace,
  newPeerWorkspace,
  readStepLog,
  startAuthority,
  startPeer,
  untilLog,
} from '../helpers/peer-e2e.js';

/**
 * Faults with real processes: a peer killed mid-step, a step that always
 * fails, the authority killed -9 and restarted on the same database, and an
 * authority that names a step the peer's schema does not have.
 */

let dir: ReturnType<typeof tempDir>;
let log: string;
let script: string;
let schema: string;
let gate: string;

beforeEach(() => {
  ({ dir, log, script, schema, gate } = newPeerWorkspace('taskshard-peer-faults-'));
});

afterEach(() => endPeerWorkspace({ dir, log, script, schema, gate }));

const openGate = (): void => writeFileSync(gate, '');
const all6 = { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, s6: 1 };

describe('taskshard peer under faults', () => {
  it('a peer killed -9 mid-step: its step is rebuilt by another peer, the survivors exit 0', async () => {
    const auth = await startAuthority({ db: dir.file('a.db'), leaseGraceSec: 0.5 });
    const peers = ['k1', 'k2', 'k3'].map((name) => startPeer({ name, server: auth.wsUrl, schema, script, env: { GATE: gate } }));
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    const victimStart = await untilLog(log, 'k1 running a step', (lines) => lines.find((l) => l.event === 'start' && l.peer === 'k1'));
    // The CI job dies: the peer and its step's process group.
    peers[0]!.kill('SIGKILL');
    process.kill(-victimStart.pid!, 'SIGKILL');
    await peers[0]!.exit();
    openGate();

    const survivors = peers.slice(1);
    expect(await Promise.all(survivors.map((p) => p.exit()))).toEqual([0, 0]);
    const lines = readStepLog(log);
    expect(countBy(lines, 'done')).toEqual(all6);
    const rebuilt = lines.find((l) => l.event === 'done' && l.step === victimStart.step)!;
    expect(['k2', 'k3']).toContain(rebuilt.peer);
    expect(lines.filter((l) => l.event === 'start' && l.step === victimStart.step).length).toBe(2);
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 2 });
  });

  it('a step that always fails is retried once, then every peer exits 1 naming it', async () => {
    const auth = await startAuthority({ db: dir.file('b.db') });
    const peers = ['f1', 'f2', 'f3'].map((name) => startPeer({ name, server: auth.wsUrl, schema, script, env: { FAIL_STEPS: 's3', GATE: gate } }));
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    openGate();
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([1, 1, 1]);

    const lines = readStepLog(log);
    const failures = lines.filter((l) => l.event === 'fail');
    expect(failures.map((l) => l.step)).toEqual(['s3', 's3']);
    expect(failures[0]!.peer).not.toBe(failures[1]!.peer);
    const lastFailer = failures[1]!.peer;
    expect(lines.some((l) => l.phase === 'universe')).toBe(false);
    for (const p of peers) {
      expect(p.stdout).toContain(`step s3 FAILED on peer ${lastFailer} with exit 3 (failed 2 times; last on ${lastFailer} with exit 3)`);
      expect(p.stdout).toContain('  | boom: s3 is broken');
      expect(p.stdout).toMatch(new RegExp(`exit 1: shared step s3 failed \\(on peer ${lastFailer}, exit 3`));
    }
  });

  it('the authority killed -9 and restarted on the same database: every step built exactly once, peers exit 0', async () => {
    const port = await freePort();
    const db = dir.file('c.db');
    let auth = await startAuthority({ db, port });
    const peers = ['r1', 'r2', 'r3'].map((name) => startPeer({ name, server: auth.wsUrl, schema, script, env: { GATE: gate } }));
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    await untilLog(log, 'three steps running', (lines) => lines.filter((l) => l.event === 'start').length === 3);

    auth.proc.kill('SIGKILL');
    await auth.proc.exit();
    await Promise.all(peers.map((p) => p.line(/lost the authority .*; reconnecting for up to 1m 00s, step s\d keeps running/)));
    // The running steps finish while the authority is down; their results must survive the outage.
    openGate();
    await untilLog(log, 'three steps done', (lines) => lines.filter((l) => l.event === 'done').length === 3);

    auth = await startAuthority({ db, port });
    expect(await Promise.all(peers.map((p) => p.exit(30_000)))).toEqual([0, 0, 0]);
    for (const p of peers) expect(p.stdout).toMatch(/reconnected and resumed in cohort/);
    const lines = readStepLog(log);
    expect(countBy(lines, 'start')).toEqual(all6);
    expect(countBy(lines, 'done')).toEqual(all6);
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 3 });
    for (const p of peers) expect(p.stdout).toMatch(/complete \(succeeded\): .* \/ failed 0 \//);
  });

  it('an authority that names a step the schema lacks is not trusted: nothing unknown runs, the peer builds everything itself', async () => {
    // Not a stand-in for taskshard's authority (which only names steps of the digest-matched
    // schema): an adversary speaking valid protocol v1, to show what the peer refuses.
    const port = await freePort();
    const hostile = new WebSocketServer({ host: '127.0.0.1', port });
    let connections = 0;
    hostile.on('connection', (socket) => {
      const nth = ++connections;
      socket.on('message', () => {
        socket.send(JSON.stringify({ type: 'welcome', protocol: 1, peerId: 'h1', resumeToken: 'rt_x', resumed: false, cohort: { id: 'c_x', peers: 1, steps: 6, resolved: 0, succeeded: [] }, pingIntervalMs: 15000 }));
        if (nth === 1) socket.send(JSON.stringify({ type: 'assign', cohortId: 'c_x', stepId: 'rm-rf', leaseId: 'l_x', attempt: 1, backup: false }));
        else socket.send(JSON.stringify({ type: 'assign', cohortId: 'c_x', stepId: 's1', leaseId: 'l_y', attempt: 1, backup: false, command: 'rm -rf /' }));
      });
    });
    try {
      const peer = startPeer({ name: 'h1', server: `ws://127.0.0.1:${port}`, schema, script });
      expect(await peer.exit()).toBe(0);
      expect(peer.stderr).toContain('authority misbehaved: its assign names step "rm-rf", which schema e2e does not have; refusing to run it');
      expect(peer.stdout).toMatch(/WARNING: FAILING OPEN: the authority cannot be trusted/);
      const lines = readStepLog(log);
      expect(countBy(lines, 'done')).toEqual(all6);
      expect(lines.some((l) => l.step === 'rm-rf')).toBe(false);

      // A frame that is not protocol v1 (an unknown field) is refused the same way; --strict exits 2.
      const strict = startPeer({ name: 'h1', server: `ws://127.0.0.1:${port}`, schema, script, args: ['--strict'] });
      expect(await strict.exit()).toBe(2);
      expect(strict.stdout).toMatch(/exit 2 \(--strict\): the authority cannot be trusted: it sent an invalid frame: assign: command: unknown field "command"/);
      expect(readStepLog(log).filter((l) => l.event === 'start')).toHaveLength(6 + 1); // the first peer's 6 steps and universe only
    } finally {
      for (const c of hostile.clients) c.terminate();
      await new Promise((r) => hostile.close(r));
    }
  });
});
