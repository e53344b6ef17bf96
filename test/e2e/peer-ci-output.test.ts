import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCliAsync } from '../helpers/cli.js';
import { endPeerWorkspace, freePort, newPeerWorkspace, startAuthority, startPeer, withoutCiEnv, type PeerWorkspace } from '../helpers/peer-e2e.js';

/** CI-native output: --report JSON, GitHub groups and step summary, GitLab sections, --quiet, and --check. */

let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-peer-ci-output-', 3);
});
afterEach(() => endPeerWorkspace(ws));

const github = (summary: string): NodeJS.ProcessEnv => ({
  GITHUB_ACTIONS: 'true',
  GITHUB_RUN_ID: '7',
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_JOB: 'build',
  GITHUB_REPOSITORY: 'acme/mono',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REF_NAME: 'main',
  GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
  GITHUB_STEP_SUMMARY: summary,
});

describe('CI-native output', () => {
  it('--report writes the run as JSON; in GitHub Actions each build is a group and a table goes to $GITHUB_STEP_SUMMARY', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db') });
    const summary = ws.dir.file('summary.md');
    writeFileSync(summary, '');
    const reports = ['r1', 'r2'].map((n) => ws.dir.file(`${n}.json`));
    const peers = ['r1', 'r2'].map((name, i) => startPeer({ name, server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--report', reports[i]!], env: { ...github(summary), GATE: ws.gate } }));
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    writeFileSync(ws.gate, '');
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0]);

    const [a, b] = reports.map((f) => JSON.parse(readFileSync(f, 'utf8')));
    for (const r of [a, b]) {
      expect(r).toMatchObject({ format: 'taskshard-peer-report/1', mode: 'shared', exitCode: 0, failOpen: null, schema: { id: 'e2e' }, source: { repo: 'example.com/acme/mono', baseRef: 'main', baseSha: '0123456789abcdef0123456789abcdef01234567' } });
      expect(r.cohortId).toBe(a.cohortId);
      expect(r.finalLine).toBe('exit 0: every step resolved and the universe built');
      expect(r.steps.map((s: any) => s.stepId)).toEqual(['s1', 's2', 's3']);
      for (const s of r.steps) {
        expect(s.outcome).toBe('succeeded');
        expect(['r1', 'r2']).toContain(s.builtBy);
        expect(typeof s.durationMs).toBe('number');
      }
      expect(r.totals.builtHere + r.totals.builtByOthers).toBe(3);
      expect(r.universe).toMatchObject({ ok: true, exitCode: 0 });
      // Both units: build time (its own, and saved) and runner time (join to complete) against building alone.
      const runner = r.totals.runner as { builtSec: number; aloneSec: number; spentSec: number; savedSec: number };
      expect(runner.savedSec).toBeCloseTo(runner.aloneSec - runner.spentSec, 3);
      expect(runner.builtSec + r.totals.savedSec).toBeCloseTo(runner.aloneSec, 3);
      expect(runner.spentSec).toBeGreaterThan(0);
    }
    expect(a.totals.builtHere + b.totals.builtHere).toBe(3);
    expect(a.totals.runner.builtSec + b.totals.runner.builtSec).toBeCloseTo(a.totals.runner.aloneSec, 3);
    for (const p of peers) {
      expect(p.stdout).toMatch(/^::group::taskshard: step s\d \(\/\/s\d\/\.\.\.\)\n[\s\S]*?^::endgroup::$/m);
      expect(p.stdout).toMatch(/^::group::taskshard: universe \/\/\.\.\.$/m);
    }
    const md = readFileSync(summary, 'utf8');
    expect(md.match(/^### taskshard: passed \(exit 0\)/gm)).toHaveLength(2);
    expect(md).toMatch(/^\| step \| outcome \| built by \| duration \| waited \|$/m);
    expect(md).toMatch(/^\| `s1` \| succeeded \| /m);
    expect(md).toMatch(/· build time saved [^·]+ · runner time [^·]+ building and waiting vs [^·]+ building alone: (saved|NEGATIVE)/);
  });

  it('a run that failed open says so in --report; GitLab gets collapsible sections; --quiet keeps assignments and the final line', async () => {
    const nowhere = await freePort();
    const report = ws.dir.file('open.json');
    const peer = startPeer({
      name: 'q1',
      server: `ws://127.0.0.1:${nowhere}`,
      schema: ws.schema,
      script: ws.script,
      args: ['--connect-timeout', '0.5', '--report', report, '--quiet'],
      env: { GITLAB_CI: 'true', CI_JOB_ID: '42' },
    });
    expect(await peer.exit()).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8'));
    expect(r).toMatchObject({ mode: 'local', exitCode: 0, failOpen: { cause: 'unreachable' } });
    expect(r.totals.runner).toBeNull();
    expect(r.failOpen.reason).toMatch(/^no answer from the authority at ws:\/\/127\.0\.0\.1:\d+\/v1\/peer within/);
    expect(r.finalLine).toMatch(/^exit 0: every step resolved and the universe built \(FAILED OPEN, nothing shared: no answer from the authority/);
    expect(r.steps.every((s: any) => s.builtHere && s.builtBy === 'q1')).toBe(true);
    // GitLab's section markers are ANSI escape sequences.
    // eslint-disable-next-line no-control-regex
    expect(peer.stdout).toMatch(/\x1b\[0Ksection_start:\d+:taskshard_1\[collapsed=true\]\r\x1b\[0Ktaskshard: step s1 \(\/\/s1\/\.\.\.\)\n/);
    // eslint-disable-next-line no-control-regex
    expect(peer.stdout).toMatch(/\x1b\[0Ksection_end:\d+:taskshard_1\r\x1b\[0K\n/);
    const own = peer.stdout.split('\n').filter((l) => l.startsWith('taskshard: '));
    // Quiet: the three assignments and the final line (which says it failed open, and why); no warning,
    // no start-up, "finished" or universe lines, and no diagnostics on stderr.
    expect(own.map((l) => l.replace(/ \(.*$/, ''))).toEqual(['taskshard: step s1 building here', 'taskshard: step s2 building here', 'taskshard: step s3 building here', 'taskshard: exit 0: every step resolved and the universe built']);
    expect(own.at(-1)).toMatch(/\(FAILED OPEN, nothing shared: no answer from the authority at ws:\/\/127\.0\.0\.1:\d+\/v1\/peer within 500 ms/);
    expect(peer.stderr).toBe('');
  });

  it('--quiet prints no waiting lines and no warnings while it waits on others; failures and the final line still show', async () => {
    const auth = await startAuthority({ db: ws.dir.file('quiet.db') });
    // One step, broken everywhere: the holder builds it (gated) and fails it, the retry on a waiter fails too.
    writeFileSync(ws.schema, JSON.stringify({ id: 'one', universe: '//...', steps: [{ id: 'perception', target: '//p/...', estimateSec: 900 }] }));
    // No base sha (the temp dir is no git checkout): each peer gets the loud NO BASE SHA warning, which quiet drops.
    const spec = { server: auth.wsUrl, schema: ws.schema, script: ws.script, cwd: ws.dir.path };
    const env = { FAIL_STEPS: 'perception' };
    const holder = startPeer({ ...spec, name: 'h1', env: { ...env, GATE: ws.gate } });
    await holder.line(/step perception assigned/);
    const quiet = startPeer({ ...spec, name: 'q1', args: ['--progress-interval', '1', '--quiet'], env });
    const loud = startPeer({ ...spec, name: 'l1', args: ['--progress-interval', '1'], env });
    await loud.line(/WARNING: NO BASE SHA/);
    // Two progress lines from the loud waiter: the quiet one has been waiting that long too.
    await loud.line(/taskshard: waiting: 0\/1 resolved; perception held by h1 for [^\n]*\n[\s\S]*taskshard: waiting: 0\/1 resolved/, 10_000);
    writeFileSync(ws.gate, '');
    expect(await Promise.all([holder.exit(), quiet.exit(), loud.exit()])).toEqual([1, 1, 1]);
    const own = quiet.stdout.split('\n').filter((l) => l.startsWith('taskshard: '));
    for (const line of own) expect(line).toMatch(/^taskshard: (step perception assigned \(\/\/p\/\.\.\., attempt 2\)|step perception FAILED on peer \w+ with exit 3|exit 1: )/);
    expect(own.some((l) => /FAILED on peer/.test(l))).toBe(true);
    expect(own.at(-1)).toMatch(/^taskshard: exit 1: /);
    expect(quiet.stdout).toMatch(/^ {2}\| boom: perception is broken$/m);
    expect(quiet.stdout).not.toMatch(/waiting|WARNING|joined cohort|cohort page/);
    // No diagnostics either (COMMAND's own stderr, "boom", is the build's, not the peer's).
    expect(quiet.stderr).not.toMatch(/taskshard/);
  });

  it('taskshard peer --check: 0 when the authority, token, schema and COMMAND are fine; 2 naming what is not, without joining', async () => {
    const token = 'check-token-0123456789';
    const auth = await startAuthority({ db: ws.dir.file('c.db'), env: { TASKSHARD_TOKEN: token } });
    const args = (server: string, command: string, extra: string[] = []): string[] => ['peer', '--check', '--server', server, '--schema', ws.schema, '--cache-id', 'c', '--repo', 'r', '--base-ref', 'main', ...extra, '--', command, '{target}'];
    const env = (t: string): NodeJS.ProcessEnv => ({ ...withoutCiEnv(process.env), TASKSHARD_TOKEN: t });
    const ok = await runCliAsync(args(auth.wsUrl, '/bin/true'), { env: env(token) });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/check ok: schema e2e: 3 steps, sha256:/);
    expect(ok.stdout).toMatch(/check ok: COMMAND \/bin\/true/);
    expect(ok.stdout).toMatch(/check ok: authority 127\.0\.0\.1:\d+ is up \(ok\), version \d/);
    expect(ok.stdout).toMatch(/check ok: WebSocket ws:\/\/127\.0\.0\.1:\d+\/v1\/peer accepted this peer's token/);
    expect(ok.stdout).toMatch(/check passed: exit 0\n$/);

    const refused = await runCliAsync(args(auth.wsUrl, '/bin/true'), { env: env('wrong-token-0123456789') });
    expect(refused.code).toBe(2);
    expect(refused.stdout).toMatch(/check FAILED: WebSocket ws:\/\/127\.0\.0\.1:\d+\/v1\/peer REFUSED the token \(HTTP 401/);
    const nowhere = await freePort();
    const down = await runCliAsync(args(`ws://127.0.0.1:${nowhere}`, '/bin/true', ['--connect-timeout', '1']), { env: env(token) });
    expect(down.code).toBe(2);
    expect(down.stdout).toMatch(/check FAILED: authority http:\/\/127\.0\.0\.1:\d+\/healthz unreachable/);
    expect(down.stdout).toMatch(/check FAILED \(2 problems\): exit 2/);
    const badCommand = await runCliAsync(args(auth.wsUrl, 'no-such-tool-xyz'), { env: env(token) });
    expect(badCommand.code).toBe(2);
    expect(badCommand.stderr).toMatch(/COMMAND: no-such-tool-xyz: not found on PATH/);
    const peers = (await (await fetch(`${auth.httpUrl}/api/v1/peers`, { headers: { authorization: `Bearer ${token}` } })).json()) as { peers: unknown[] };
    expect(peers.peers).toEqual([]); // nothing joined
  });
});
