import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
  waitUntil,
  type Proc,
} from '../helpers/peer-e2e.js';

/**
 * `taskshard peer` processes against a real `taskshard server` process on
 * loopback; steps are shell scripts appending to one log file, so "built
 * once" is read from what actually ran.
 */

let dir: ReturnType<typeof tempDir>;
let log: string;
let script: string;
let schema: string;
let gate: string;

beforeEach(() => {
  ({ dir, log, script, schema, gate } = newPeerWorkspace('taskshard-peer-e2e-'));
});

afterEach(() => endPeerWorkspace({ dir, log, script, schema, gate }));

const openGate = (): void => writeFileSync(gate, '');
const all6 = { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, s6: 1 };

function cohortOf(p: Proc): string {
  const m = /joined cohort (\S+) as peer/.exec(p.stdout);
  if (!m) throw new Error(`${p.name} never joined:\n${p.stdout}`);
  return m[1]!;
}

describe('taskshard peer with a real authority', () => {
  it('3 peers x 6 steps: each step is built once, the universe three times, all exit 0', async () => {
    const auth = await startAuthority({ db: dir.file('a.db') });
    const peers = ['p1', 'p2', 'p3'].map((name) => startPeer({ name, server: auth.wsUrl, schema, script, env: { GATE: gate } }));
    // Hold every step until all three have joined, so the work is spread.
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    await untilLog(log, 'three steps running', (lines) => lines.filter((l) => l.event === 'start').length === 3);
    openGate();
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0, 0]);

    const lines = readStepLog(log);
    expect(countBy(lines, 'done')).toEqual(all6);
    expect(countBy(lines, 'start')).toEqual(all6);
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 3 });
    for (const p of peers) {
      expect(lines.some((l) => l.event === 'done' && l.phase === 'step' && l.peer === p.name)).toBe(true);
      expect(p.stdout).toMatch(/complete \(succeeded\): built here \d+ .*\/ built by others \d+ \/ from memo 0 \/ failed 0 \/ build time saved .* \/ runner time /);
      expect(p.stdout).toContain('exit 0: every step resolved and the universe built');
    }
    expect(new Set(peers.map(cohortOf)).size).toBe(1);
    // Placeholders are substituted per argv element, and the env names the step.
    for (const l of lines.filter((x) => x.event === 'start')) {
      const [argStep, argTarget, envTarget] = l.rest;
      expect(argStep).toBe(l.step);
      expect(argTarget).toBe(l.phase === 'universe' ? '//...' : `//${l.step}/...`);
      expect(envTarget).toBe(argTarget);
    }
    // One line per event for the CI log.
    const p1 = peers[0]!.stdout;
    expect(p1).toMatch(/^taskshard: joined cohort c_\S+ as peer p1 \(\d peers?, 0\/6 steps resolved\)$/m);
    expect(p1).toMatch(/^taskshard: step s\d assigned \(\/\/s\d\/\.\.\.\)$/m);
    expect(p1).toMatch(/^taskshard: step s\d finished in \d/m);
    // Heard while waiting, or named at complete (targeted updates: it was busy then); with the build's duration either way.
    expect(p1).toMatch(/^taskshard: step s\d built by peer p[23] in /m);
    expect(p1).toMatch(/^building s\d \(\/\/s\d\/\.\.\.\) on p1$/m); // the step's own output, streamed through
  });

  it('stacked changes in a dependent pipeline share one cohort', async () => {
    const auth = await startAuthority({ db: dir.file('b.db') });
    const stacks = [['refs/changes/1/1'], ['refs/changes/1/1', 'refs/changes/2/1'], ['refs/changes/1/1', 'refs/changes/2/1', 'refs/changes/3/1']];
    const peers = stacks.map((patchsets, i) =>
      startPeer({
        name: `q${i + 1}`,
        server: auth.wsUrl,
        schema,
        script,
        args: ['--pipeline-type', 'dependent', '--pipeline', 'gate', ...patchsets.flatMap((p) => ['--patchset', p])],
        env: { GATE: gate },
      }),
    );
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    openGate();
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0, 0]);
    expect(new Set(peers.map(cohortOf)).size).toBe(1);
    const lines = readStepLog(log);
    expect(countBy(lines, 'done')).toEqual(all6);
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 3 });
  });

  it('different changes in an independent pipeline share nothing', async () => {
    const auth = await startAuthority({ db: dir.file('c.db') });
    const peers = ['r1', 'r2'].map((name, i) =>
      startPeer({ name, server: auth.wsUrl, schema, script, args: ['--change-ref', `refs/changes/${i + 1}/1`], env: { GATE: gate } }),
    );
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    openGate();
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0]);
    expect(cohortOf(peers[0]!)).not.toBe(cohortOf(peers[1]!));
    const lines = readStepLog(log);
    for (const p of peers) {
      const built = lines.filter((l) => l.event === 'done' && l.phase === 'step' && l.peer === p.name).map((l) => l.step).sort();
      expect(built).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
      expect(p.stdout).toMatch(/joined cohort \S+ as peer r\d \(1 peer, 0\/6 steps resolved\)/);
      expect(p.stdout).toContain('built by others 0');
    }
  });

  it('a peer with a token completes against an authority that requires one; a wrong token fails open', async () => {
    const token = 'peer-token-0123456789abcdef';
    const auth = await startAuthority({ db: dir.file('d.db'), env: { TASKSHARD_TOKEN: token } });
    const good = startPeer({ name: 't1', server: auth.wsUrl, schema, script, env: { TASKSHARD_TOKEN: token } });
    expect(await good.exit()).toBe(0);
    expect(good.stdout).toMatch(/joined cohort c_/);
    expect(good.stdout).not.toContain('FAILING OPEN');
    expect(good.stdout + good.stderr).not.toContain(token);

    const strict = startPeer({ name: 't2', server: auth.wsUrl, schema, script, args: ['--token', 'wrong-token-0123456789', '--strict'] });
    expect(await strict.exit()).toBe(2);
    expect(strict.stdout).toMatch(/exit 2 \(--strict\): the authority refused this peer's token \(HTTP 401: missing or wrong peer token/);

    const report = dir.file('refused.json');
    const open = startPeer({ name: 't3', server: auth.wsUrl, schema, script, args: ['--token', 'wrong-token-0123456789', '--report', report] });
    expect(await open.exit()).toBe(0);
    expect(open.stdout).toMatch(/WARNING: FAILING OPEN: the authority refused this peer's token \(HTTP 401: missing or wrong peer token/);
    // Failing open on a refusal is never silent: the final line and --report say so, and why.
    expect(open.stdout.trim().split('\n').pop()).toMatch(/^taskshard: exit 0: every step resolved and the universe built \(FAILED OPEN, nothing shared: the authority refused this peer's token \(HTTP 401/);
    const r = JSON.parse(readFileSync(report, 'utf8')) as { mode: string; exitCode: number; failOpen: { cause: string; reason: string }; finalLine: string };
    expect(r).toMatchObject({ mode: 'local', exitCode: 0, failOpen: { cause: 'unauthorized' } });
    expect(r.failOpen.reason).toMatch(/the authority refused this peer's token \(HTTP 401/);
    expect(r.finalLine).toMatch(/FAILED OPEN, nothing shared: the authority refused this peer's token/);
    const lines = readStepLog(log);
    expect(lines.filter((l) => l.event === 'done' && l.phase === 'step' && l.peer === 't3').length).toBe(6);
    expect(lines.some((l) => l.peer === 't2')).toBe(false);
  });

  it('no authority: a loud warning, every step built here, exit 0; --strict exits 2 and builds nothing', async () => {
    const port = await freePort(); // nothing listens there
    const strict = startPeer({ name: 'n1', server: `ws://127.0.0.1:${port}`, schema, script, args: ['--connect-timeout', '0.5', '--strict'] });
    const lone = startPeer({ name: 'n2', server: `ws://127.0.0.1:${port}`, schema, script, args: ['--connect-timeout', '0.5'] });
    expect(await strict.exit()).toBe(2);
    expect(await lone.exit()).toBe(0);
    expect(lone.stdout).toMatch(/WARNING: FAILING OPEN: no answer from the authority at ws:\/\/127\.0\.0\.1:\d+\/v1\/peer within 500 ms; last attempt: connect ECONNREFUSED/);
    expect(lone.stdout).toContain('building 6 remaining step(s) here: s1, s2, s3, s4, s5, s6');
    const lines = readStepLog(log);
    expect(countBy(lines.filter((l) => l.peer === 'n2'), 'done')).toEqual(all6);
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 1 });
    expect(lines.some((l) => l.peer === 'n1')).toBe(false);
  });

  it('an admin cancel aborts the running step (its whole process group), then the peer fails open', async () => {
    const adminToken = 'admin-token-0123456789abcdef';
    const auth = await startAuthority({ db: dir.file('e.db'), env: { TASKSHARD_ADMIN_TOKEN: adminToken } });
    const grandchild = dir.file('grandchild.pid');
    // s1 starts a background grandchild in the same process group, then blocks on the gate.
    writeFileSync(
      dir.file('step-bg.sh'),
      `#!/bin/sh\nif [ "$1" = s1 ] && [ ! -e '${grandchild}' ]; then sleep 300 & echo $! > '${grandchild}'; fi\nexec /bin/sh '${script}' "$@"\n`,
    );
    const peer = startPeer({ name: 'x1', server: auth.wsUrl, schema, script: dir.file('step-bg.sh'), env: { GATE: gate } });
    const cohort = (await peer.line(/joined cohort (\S+) as peer/))[1]!;
    await untilLog(log, 's1 running', (lines) => lines.some((l) => l.event === 'start' && l.step === 's1'));
    const bgPid = await waitUntil('the grandchild pid', () => readPid(grandchild));
    expect(alive(bgPid)).toBe(true);

    const res = await fetch(`${auth.httpUrl}/api/v1/cohorts/${cohort}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    expect(res.status).toBe(200);
    await peer.line(/step s1 stopped after .*: cancelled by the authority/);
    await waitUntil('the grandchild to be killed', () => !alive(bgPid));
    await peer.line(/WARNING: FAILING OPEN: the authority cancelled the cohort/);
    openGate();
    expect(await peer.exit()).toBe(0);
    expect(countBy(readStepLog(log), 'done')).toEqual(all6);
  });
});

function readPid(file: string): number | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** Alive and not a zombie (a killed child may wait a moment to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
