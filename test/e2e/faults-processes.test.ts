import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { queryDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import {
  countBy,
  freePort,
  endPeerWorkspace,
  newPeerWorkspace,
  readStepLog,
  startAuthority,
  startPeer,
  untilLog,
  waitUntil,
  writeFlatSchema,
  type Authority,
  type Proc,
} from '../helpers/peer-e2e.js';
import type { tempDir } from '../helpers/temp-dir.js';

/**
 * Faults with real processes (issue 7): random kill -9 of peers, kill -9 of
 * the authority at random points, a peer stopped past its grace, and a step
 * that kills its own peer. `npm test` runs short versions; `npm run
 * test:soak` (TASKSHARD_SOAK=1) runs the same code at full size. Seeded, so a
 * failure can be replayed with the printed seed (TASKSHARD_SEED).
 */
const soak = process.env.TASKSHARD_SOAK === '1';
const seed = Number(process.env.TASKSHARD_SEED ?? 20261122);

/** A small seeded PRNG (mulberry32), so kill points are reproducible. */
function prng(s: number): (n: number) => number {
  let a = s >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

let dir: ReturnType<typeof tempDir>;
let log: string;
let script: string;
let schema: string;

beforeEach(() => {
  ({ dir, log, script, schema } = newPeerWorkspace('taskshard-faults-'));
  // Each step sleeps a little (so kills land mid-step), logs start and done; GATE (a file) holds steps until it exists;
  // POISON names a step that kills its peer.
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `log='${log}'`,
      'echo "start $TASKSHARD_PHASE $TASKSHARD_STEP $PEER_NAME $$" >> "$log"',
      'if [ -n "$GATE" ] && [ "$TASKSHARD_PHASE" = step ]; then while [ ! -e "$GATE" ]; do sleep 0.02; done; fi',
      'if [ "$1" = "$POISON" ]; then kill -9 $PPID; sleep 5; fi',
      'sleep "${STEP_SLEEP:-0}"',
      'echo "done $TASKSHARD_PHASE $TASKSHARD_STEP $PEER_NAME $$" >> "$log"',
      '',
    ].join('\n'),
  );
});

afterEach(() => endPeerWorkspace({ dir, log, script, schema, gate: dir.file('gate') }));

const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills a peer like a dying CI job: the peer process and its running step's process group. */
function killJob(peer: Proc, name: string): void {
  peer.kill('SIGKILL');
  for (const line of readStepLog(log)) {
    if (line.event !== 'start' || line.peer !== name || line.pid === null) continue;
    try {
      process.kill(-line.pid, 'SIGKILL');
    } catch {
      // finished already
    }
  }
}

/** Each peer's exit and the end of its output, for a failure message. */
function whatEachDid(peers: readonly Proc[]): string {
  return peers.map((p) => `--- ${p.name}: code ${p.code} signal ${p.signal}\n${p.stdout.slice(-1500)}${p.stderr.slice(-1000)}`).join('\n');
}

describe('faults with real processes', () => {
  it(`random kill -9 of peers: ${soak ? '20 peers, 200 steps, 100 kills' : '6 peers, 30 steps, 10 kills'} → nothing lost, nothing twice, survivors exit 0`, async () => {
    const [peerCount, stepCount, kills] = soak ? [20, 200, 100] : [6, 30, 10];
    const rand = prng(seed);
    writeFlatSchema(schema, stepCount, 'soak');
    const db = dir.file('soak.db');
    // These kills are external, not caused by a step: lift the poison-step limit so an unlucky step is not failed for it.
    const auth = await startAuthority({ db, leaseGraceSec: 0.3, args: ['--max-lost-leases', '1000'] });
    const spawnPeer = (name: string): Proc =>
      startPeer({ name, server: auth.wsUrl, schema, script, args: ['--patience', '120'], env: { STEP_SLEEP: '0.08' } });
    const live = new Map<string, Proc>();
    let next = 0;
    for (; next < peerCount; next++) live.set(`peer-${next}`, spawnPeer(`peer-${next}`));
    const killed = new Set<string>();
    for (let k = 0; k < kills; k++) {
      await sleepMs(30 + rand(120));
      const running = [...live.entries()].filter(([, p]) => !p.exited);
      if (running.length === 0) break;
      const [name, victim] = running[rand(running.length)]!;
      killJob(victim, name);
      killed.add(name);
      live.delete(name);
      const replacement = `peer-${next++}`;
      live.set(replacement, spawnPeer(replacement));
    }
    const codes = await Promise.all([...live.values()].map((p) => p.exit(soak ? 180_000 : 60_000)));
    expect(codes.every((c) => c === 0), `survivor exit codes ${codes} (seed ${seed})`).toBe(true);
    const steps = queryDb(db, "SELECT count(*) AS n FROM steps WHERE status = 'succeeded'") as { n: number }[];
    expect(steps[0]!.n).toBe(stepCount);
    expect(queryDb(db, "SELECT count(*) AS n, count(DISTINCT cohort_id || step_id) AS d FROM steps WHERE status = 'succeeded'")).toEqual([{ n: stepCount, d: stepCount }]);
    expect(Object.keys(countBy(readStepLog(log), 'done')).length).toBe(stepCount);
    expect(killed.size).toBeGreaterThan(0);
  }, soak ? 600_000 : 120_000);

  it(`authority kill -9 at ${soak ? 20 : 5} random points: integrity ok, acknowledged completions survive, each step built once`, async () => {
    const kills = soak ? 20 : 5;
    const stepCount = soak ? 80 : 24;
    const rand = prng(seed + 1);
    writeFlatSchema(schema, stepCount, 'crashy');
    const db = dir.file('crash.db');
    const port = await freePort();
    let auth: Authority = await startAuthority({ db, port });
    const peers = ['a', 'b', 'c', 'd'].map((name) =>
      startPeer({ name, server: auth.wsUrl, schema, script, args: ['--patience', '120', '--connect-timeout', '60'], env: { STEP_SLEEP: '0.05' } }),
    );
    for (let k = 0; k < kills; k++) {
      await sleepMs(100 + rand(300));
      if (peers.every((p) => p.exited)) break;
      auth.proc.kill('SIGKILL');
      await auth.proc.exit();
      expect(queryDb(db, 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
      auth = await startAuthority({ db, port });
    }
    expect(await Promise.all(peers.map((p) => p.exit(soak ? 180_000 : 60_000)))).toEqual([0, 0, 0, 0]);
    const done = countBy(readStepLog(log), 'done');
    expect(Object.keys(done).length).toBe(stepCount);
    expect(Object.entries(done).filter(([, n]) => n !== 1), `steps built more than once (seed ${seed})\n${whatEachDid(peers)}`).toEqual([]);
    expect(queryDb(db, "SELECT count(*) AS n FROM steps WHERE status = 'succeeded'")).toEqual([{ n: stepCount }]);
    expect(queryDb(db, 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
  }, soak ? 600_000 : 120_000);

  it('a join committed whose welcome is lost (connection dropped, then the authority killed with SIGKILL): the same registration token resumes it and keeps its lease; another token is DUPLICATE_PEER', async () => {
    const db = dir.file('lost-welcome.db');
    const port = await freePort();
    let auth: Authority = await startAuthority({ db, port });
    const steps = flatSchema(2, 'lost-welcome');
    const token = randomBytes(32).toString('base64url');
    const hello = (registrationToken: string) => helloFor('p1', steps, { registrationToken });
    const url = () => `${auth.wsUrl}/v1/peer`;
    const leaseRows = () => queryDb(db, 'SELECT lease_id, step_id, outcome FROM leases') as { lease_id: string; step_id: string; outcome: string | null }[];

    // The join and its lease commit; the peer's connection drops (the frames it was sent count as never read).
    const first = await RawPeer.connect(url());
    first.send(hello(token));
    const committed = await waitUntil('the join and its lease to commit', () => {
      const rows = leaseRows();
      return rows.length === 1 && queryDb(db, "SELECT status FROM peers WHERE peer_id = 'p1'").length === 1 ? rows[0]! : null;
    });
    await first.kill();
    const again = await RawPeer.connect(url());
    again.send(hello(token));
    expect(await again.waitType('welcome')).toMatchObject({ resumed: true, resumeToken: token });
    expect(await again.waitType('assign')).toMatchObject({ stepId: committed.step_id, leaseId: committed.lease_id, attempt: 1 });
    await again.kill();

    // The authority dies with the registration committed; after the restart it sits in grace.
    auth.proc.kill('SIGKILL');
    await auth.proc.exit();
    auth = await startAuthority({ db, port });
    const other = await RawPeer.connect(url());
    other.send(hello(randomBytes(32).toString('base64url')));
    expect(await other.waitType('error')).toMatchObject({ code: 'DUPLICATE_PEER' });
    expect(await other.closed()).toBe(4409);
    const resumed = await RawPeer.connect(url());
    resumed.send(hello(token));
    expect(await resumed.waitType('welcome')).toMatchObject({ resumed: true, resumeToken: token, cohort: { peers: 1 } });
    expect(await resumed.waitType('assign')).toMatchObject({ stepId: committed.step_id, leaseId: committed.lease_id, attempt: 1 });
    resumed.send({ type: 'step.finished', leaseId: committed.lease_id, stepId: committed.step_id, ok: true, exitCode: 0, durationMs: 5 });
    expect(await resumed.waitFor((m) => m.type === 'step.update' && m.stepId === committed.step_id)).toMatchObject({ state: 'succeeded', peerId: 'p1' });
    await resumed.close();
    // One lease for the step, never lost.
    expect(leaseRows().filter((r) => r.step_id === committed.step_id)).toEqual([{ lease_id: committed.lease_id, step_id: committed.step_id, outcome: 'succeeded' }]);
  }, 60_000);

  it('a peer stopped (SIGSTOP) beyond its grace: the step is re-leased; after SIGCONT its completion is fenced', async () => {
    writeFlatSchema(schema, 2, 'stopped');
    const db = dir.file('stop.db');
    const gate = dir.file('gate');
    // A ping interval short enough that the stopped peer is noticed quickly.
    const fast = await startAuthority({ db, leaseGraceSec: 0.5, args: ['--ping-interval', '0.2'] });
    const a = startPeer({ name: 'sleeper', server: fast.wsUrl, schema, script, env: { GATE: gate } });
    const aStep = await untilLog(log, 'sleeper running a step', (lines) => lines.find((l) => l.event === 'start' && l.peer === 'sleeper'));
    // The awake peer's steps are not gated: it builds the other step, then waits for work.
    const b = startPeer({ name: 'awake', server: fast.wsUrl, schema, script });
    await b.line(/waiting on step/);
    a.child.kill('SIGSTOP');
    try {
      await waitUntil('the stopped peer\'s lease to be lost and re-leased', () => {
        const rows = queryDb(db, 'SELECT peer_id, outcome FROM leases WHERE step_id = ? ORDER BY attempt', aStep.step) as { peer_id: string; outcome: string | null }[];
        return rows.length === 2 && rows[0]!.outcome === 'lost' && rows[1]!.peer_id === 'awake';
      }, 15_000);
      writeFileSync(gate, '');
      await waitUntil('the re-leased step to succeed on the awake peer', () => {
        const rows = queryDb(db, "SELECT built_by AS peer_id FROM steps WHERE status = 'succeeded' AND step_id = ?", aStep.step) as { peer_id: string }[];
        return rows[0]?.peer_id === 'awake';
      }, 15_000);
    } finally {
      a.child.kill('SIGCONT');
    }
    expect(await a.exit()).toBe(0);
    expect(await b.exit()).toBe(0);
    // The woken peer reported the step it had finished (as its current step); the authority
    // fenced it: the lost lease stays lost and the success stays the awake peer's.
    expect(a.stdout).toMatch(/rejoined as a new member/);
    expect(a.stdout).toMatch(/built here 0 \/ built by others 2/);
    expect(queryDb(db, 'SELECT peer_id, outcome FROM leases WHERE step_id = ? ORDER BY attempt', aStep.step)).toEqual([
      { peer_id: 'sleeper', outcome: 'lost' },
      { peer_id: 'awake', outcome: 'succeeded' },
    ]);
    expect(queryDb(db, "SELECT step_id, built_by AS peer_id FROM steps WHERE status = 'succeeded' ORDER BY step_id")).toEqual([
      { step_id: 's1', peer_id: expect.any(String) },
      { step_id: 's2', peer_id: expect.any(String) },
    ]);
    expect(queryDb(db, "SELECT built_by AS peer_id FROM steps WHERE status = 'succeeded' AND step_id = ?", aStep.step)).toEqual([{ peer_id: 'awake' }]);
  }, 60_000);

  it('a poison step that kills its peer every time is failed after 3 lost leases, with the reason, not retried forever', async () => {
    writeFileSync(schema, JSON.stringify({ id: 'poisoned', universe: '//...', steps: [{ id: 'poison', target: '//poison/...', estimateSec: 100 }, { id: 'ok', target: '//ok/...' }] }));
    const db = dir.file('poison.db');
    const auth = await startAuthority({ db, leaseGraceSec: 0.2 });
    const gate = dir.file('gate');
    const peers = ['v1', 'v2', 'v3', 'v4'].map((name) => startPeer({ name, server: auth.wsUrl, schema, script, env: { POISON: 'poison', GATE: gate } }));
    // Steps start once all four have joined: a peer that joins after the step failed finds the cohort closed to it
    // (a failed step) and starts a new one, where the poison kills it too (seen on a loaded machine).
    const joined = await Promise.all(peers.map((p) => p.line(/joined cohort (\S+)/, 30_000)));
    expect(new Set(joined.map((m) => m[1])).size).toBe(1);
    writeFileSync(gate, '');
    const codes = await Promise.all(peers.map((p) => p.exit(30_000)));
    const explain = `exit codes ${codes}\n${whatEachDid(peers)}\nsteps:\n${JSON.stringify(queryDb(db, 'SELECT step_id, status, lost_leases, fail_reason FROM steps'))}\nleases:\n${JSON.stringify(queryDb(db, 'SELECT step_id, peer_id, attempt, outcome, end_json FROM leases ORDER BY started_at_ms'))}`;
    // Three peers died running it; the fourth is told it failed and exits 1 naming it.
    expect(codes.filter((c) => c === null), explain).toHaveLength(3);
    expect(codes.filter((c) => c === 1), explain).toHaveLength(1);
    const survivor = peers[codes.indexOf(1)]!;
    expect(survivor.stdout + survivor.stderr).toMatch(/poison/);
    expect(queryDb(db, "SELECT status, lost_leases, fail_reason FROM steps WHERE step_id = 'poison'")).toEqual([
      { status: 'failed', lost_leases: 3, fail_reason: expect.stringMatching(/^lost its peer 3 times .*the step may be killing its peer$/) },
    ]);
    expect(queryDb(db, "SELECT count(*) AS n FROM leases WHERE step_id = 'poison'")).toEqual([{ n: 3 }]);
  }, 60_000);
});
