import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endPeerWorkspace, newPeerWorkspace, startAuthority, startPeer, type PeerWorkspace, type Proc } from '../helpers/peer-e2e.js';

/** Source state you can trust, through the real CLI: the sha is kept, repo spellings match, --cohort-key names the group. */

let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-peer-source-', 2);
});
afterEach(() => endPeerWorkspace(ws));

const cohortOf = async (p: Proc): Promise<string> => (await p.line(/joined cohort (c_[\w-]+)/))[1]!;
const githubPush = (sha: string): NodeJS.ProcessEnv => ({
  GITHUB_ACTIONS: 'true',
  GITHUB_RUN_ID: sha.slice(0, 4),
  GITHUB_JOB: 'build',
  GITHUB_REPOSITORY: 'acme/mono',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REF_NAME: 'main',
  GITHUB_SHA: sha,
});

describe('source state you can trust', () => {
  it('--base-ref main (as the quick start shows) keeps the sha detected in GitHub Actions: a later push never joins the earlier run', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db') });
    // startPeer passes --repo and --base-ref main explicitly.
    const first = startPeer({ name: 'push1', server: auth.wsUrl, schema: ws.schema, script: ws.script, env: githubPush('1111111111111111111111111111111111111111') });
    expect(await first.exit()).toBe(0);
    expect(first.stdout).toMatch(/example\.com\/acme\/mono main@111111111111/);
    const second = startPeer({ name: 'push2', server: auth.wsUrl, schema: ws.schema, script: ws.script, env: githubPush('2222222222222222222222222222222222222222') });
    expect(await second.exit()).toBe(0);
    expect(await cohortOf(second)).not.toBe(await cohortOf(first));
    expect(second.stdout).toMatch(/built here 2/);
    expect(second.stdout).not.toMatch(/NO BASE SHA/);
  });

  it('every spelling of one repository joins one cohort', async () => {
    const auth = await startAuthority({ db: ws.dir.file('b.db') });
    const spellings = ['https://example.com/acme/mono', 'https://example.com/acme/mono.git', 'git@example.com:acme/mono.git', 'HTTPS://Example.com/acme/mono/'];
    const peers = spellings.map((repo, i) => startPeer({ name: `sp${i}`, server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--repo', repo, '--base-sha', 'abc1234'], env: { GATE: ws.gate } }));
    const cohorts = await Promise.all(peers.map(cohortOf));
    expect(new Set(cohorts).size).toBe(1);
    writeFileSync(ws.gate, '');
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0, 0, 0]);
  });

  it('--cohort-key names the group: peers with the same key share whatever their refs, keeping their real refs (API) and the memo; other keys do not', async () => {
    const auth = await startAuthority({ db: ws.dir.file('c.db') });
    const keyed = (name: string, key: string, extra: string[], gate = true) =>
      startPeer({ name, server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--cohort-key', key, ...extra], env: gate ? { GATE: ws.gate } : {} });
    const a = keyed('k1', 'run-77', ['--base-sha', 'abc1234', '--patchset', 'refs/changes/1/1']);
    await cohortOf(a); // the first peer's refs become the cohort's
    const b = keyed('k2', 'run-77', ['--base-ref', 'release', '--base-sha', 'def4567', '--patchset', 'refs/changes/2/1']);
    const c = keyed('k3', 'run-78', []);
    const [ca, cb, cc] = await Promise.all([a, b, c].map(cohortOf));
    expect(ca).toBe(cb);
    expect(cc).not.toBe(ca);
    expect(a.stdout).not.toMatch(/NO BASE SHA/); // the key names the group: no warning
    expect(a.stdout).toMatch(/, cohort key run-77,/);
    // The API shows the key as a field of its own and the real refs: the first peer's for the cohort, each peer's own.
    const detail = (await (await fetch(`${auth.httpUrl}/api/v1/cohorts/${ca}`)).json()) as { cohort: Record<string, unknown>; peers: Record<string, unknown>[] };
    expect(detail.cohort).toMatchObject({ cohortKey: 'run-77', baseRef: 'main', baseSha: 'abc1234', patchsets: ['refs/changes/1/1'] });
    const peers = (await (await fetch(`${auth.httpUrl}/api/v1/peers?cohort=${ca}`)).json()) as { peers: Record<string, unknown>[] };
    expect(peers.peers.map((p) => [p.peerId, p.baseRef, p.baseSha, p.cohortKey]).sort()).toEqual([
      ['k1', 'main', 'abc1234', 'run-77'],
      ['k2', 'release', 'def4567', 'run-77'],
    ]);
    writeFileSync(ws.gate, '');
    expect(await Promise.all([a, b, c].map((p) => p.exit()))).toEqual([0, 0, 0]);

    // Memo: a keyed run with a known sha is remembered like any other; a later run of that exact source reuses it.
    const first = keyed('m1', 'run-80', ['--base-sha', '0123456789abcdef'], false);
    expect(await first.exit()).toBe(0);
    expect(first.stdout).toMatch(/built here 2/);
    const later = keyed('m2', 'run-81', ['--base-sha', '0123456789abcdef'], false);
    expect(await later.exit()).toBe(0);
    expect(later.stdout).toMatch(/built here 0 \/ built by others 0 \/ from memo 2/);
  });

  it('an independent peer without a base sha warns loudly and never joins a finished cohort', async () => {
    const auth = await startAuthority({ db: ws.dir.file('d.db') });
    const first = startPeer({ name: 'nosha1', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--patchset', 'refs/pull/1/head'] });
    expect(await first.exit()).toBe(0);
    expect(first.stdout).toMatch(/WARNING: NO BASE SHA: this job shares only with jobs that are running right now, never with a finished run/);
    // A later push to the same branch looks the same without a sha: it must build, not be told "complete".
    const later = startPeer({ name: 'nosha2', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--patchset', 'refs/pull/1/head'] });
    expect(await later.exit()).toBe(0);
    expect(await cohortOf(later)).not.toBe(await cohortOf(first));
    expect(later.stdout).toMatch(/built here 2/);
  });

  it('a peer left alone is told why: another schema digest, cache id, base sha or base ref', async () => {
    const auth = await startAuthority({ db: ws.dir.file('e.db') });
    const args = ['--base-sha', 'abc1234'];
    const a = startPeer({ name: 'al1', server: auth.wsUrl, schema: ws.schema, script: ws.script, args, env: { GATE: ws.gate } });
    const b = startPeer({ name: 'al2', server: auth.wsUrl, schema: ws.schema, script: ws.script, args, env: { GATE: ws.gate } });
    await Promise.all([a, b].map(cohortOf));
    // Same schema id, different content (an edited copy of the file).
    const edited = ws.dir.file('e2e.json');
    writeFileSync(edited, JSON.stringify({ id: 'e2e', universe: '//...', steps: [{ id: 's1', target: '//s1/...' }, { id: 's2', target: '//s2/changed' }] }));
    const odd = startPeer({ name: 'al3', server: auth.wsUrl, schema: edited, script: ws.script, args: [...args, '--no-universe'], env: { GATE: ws.gate } });
    await odd.line(/alone in cohort c_[\w-]+: 2 peers with schema e2e on the same repo and sources have digest [0-9a-f]{12}…, yours is [0-9a-f]{12}… \(the schema files differ\)/);
    const otherCache = startPeer({ name: 'al4', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: [...args, '--cache-id', 'other-cache', '--no-universe'], env: { GATE: ws.gate } });
    await otherCache.line(/alone in cohort c_[\w-]+: 2 peers on the same repo and sha use cache id e2e-cache, yours is other-cache/);
    const otherSha = startPeer({ name: 'al5', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--base-sha', 'def5678', '--no-universe'], env: { GATE: ws.gate } });
    await otherSha.line(/alone in cohort c_[\w-]+: 2 peers on the same repo and schema are on base sha abc1234…, yours is def5678…/);
    const otherRef = startPeer({ name: 'al6', server: auth.wsUrl, schema: ws.schema, script: ws.script, args: [...args, '--base-ref', 'release', '--no-universe'], env: { GATE: ws.gate } });
    await otherRef.line(/alone in cohort c_[\w-]+: 3 peers on the same repo and schema are on base ref main, yours is release/); // a, b and al5
    expect(a.stdout).not.toMatch(/alone in cohort/);
    writeFileSync(ws.gate, '');
    expect(await Promise.all([a, b, odd, otherCache, otherSha, otherRef].map((p) => p.exit()))).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
