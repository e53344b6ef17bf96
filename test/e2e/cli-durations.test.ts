import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiBase } from '../../cli/api-client.js';
import { meanDurationsSec } from '../../cli/durations-command.js';
import { runCli, runCliAsync } from '../helpers/cli.js';
import { endPeerWorkspace, freePort, newPeerWorkspace, startAuthority, startPeer, type PeerWorkspace } from '../helpers/peer-e2e.js';

/**
 * `taskshard durations export` against a real authority process that has run
 * real peers: the file it writes is what the API measured, and plan reads it.
 */
let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-durations-', 3);
});
afterEach(() => endPeerWorkspace(ws));

interface Detail {
  steps: { id: string; status: string; fromMemo: boolean; durationMs: number | null }[];
}

describe('taskshard durations export', () => {
  it('writes the mean measured duration of each step over the complete cohorts of the schema; plan reads the file', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db') });
    // Two changes, two peers each: two complete cohorts of schema "e2e". With a base sha: a peer
    // that comes after its cohort finished joins it only when the sha pins the sources (issue 13).
    for (const change of ['refs/changes/01/1', 'refs/changes/02/1']) {
      const peers = ['a', 'b'].map((n) => startPeer({ name: `${n}-${change.slice(-4, -2)}`, server: auth.wsUrl, schema: ws.schema, script: ws.script, args: ['--change-ref', change, '--base-sha', 'abc1234'] }));
      expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0]);
    }
    const list = (await (await fetch(`${auth.httpUrl}/api/v1/cohorts?status=complete`)).json()) as { cohorts: { id: string }[] };
    expect(list.cohorts).toHaveLength(2);
    const details = await Promise.all(list.cohorts.map(async (c) => (await (await fetch(`${auth.httpUrl}/api/v1/cohorts/${c.id}`)).json()) as Detail));
    const expected: Record<string, number> = {};
    for (const id of ['s1', 's2', 's3']) {
      const ms = details.map((d) => d.steps.find((s) => s.id === id)!.durationMs!);
      expected[id] = Math.max(0.1, Math.round((ms[0]! + ms[1]!) / 2 / 100) / 10);
    }

    const out = ws.dir.file('durations.json');
    const result = await runCliAsync(['durations', 'export', '--server', auth.wsUrl, '--schema-id', 'e2e', '--out', out]);
    expect(result.code).toBe(0);
    expect(result.stderr.trim()).toBe(`3 step durations from 2 complete cohorts of schema "e2e" written to ${out}`);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(expected);

    const one = await runCliAsync(['durations', 'export', '--server', auth.httpUrl, '--schema-id', 'e2e', '--cohorts', '1']);
    expect(one.code).toBe(0);
    expect(Object.keys(JSON.parse(one.stdout) as object)).toEqual(['s1', 's2', 's3']);

    const plan = runCli(['plan', '--schema', ws.schema, '--peers', '2', '--durations', out, '--json']);
    expect(plan.code).toBe(0);
    expect((JSON.parse(plan.stdout) as { durationSources: Record<string, number> }).durationSources).toEqual({ 'durations-file': 3, estimateSec: 0, default: 0 });

    const none = await runCliAsync(['durations', 'export', '--server', auth.httpUrl, '--schema-id', 'other']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no complete cohort of schema "other"');
    const otherRepo = await runCliAsync(['durations', 'export', '--server', auth.httpUrl, '--schema-id', 'e2e', '--repo', 'https://example.com/else.git']);
    expect(otherRepo.code).toBe(1);
  });

  it('names the URL when the authority cannot be reached, and exits 2 on a bad --server', async () => {
    const port = await freePort();
    const down = await runCliAsync(['durations', 'export', '--server', `http://127.0.0.1:${port}`, '--schema-id', 'e2e']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`durations export: GET http://127.0.0.1:${port}/api/v1/cohorts?status=complete&limit=1000: ECONNREFUSED`);
    const bad = runCli(['durations', 'export', '--server', 'ftp://x', '--schema-id', 'e2e']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected an http(s):// or ws(s):// URL, got "ftp://x"');
  });
});

describe('durations export, pure parts', () => {
  it('averages succeeded, built steps only; memo reuses and unbuilt steps have no measurement', () => {
    const sec = meanDurationsSec([
      { steps: [{ id: 'a', status: 'succeeded', fromMemo: false, durationMs: 1000 }, { id: 'b', status: 'succeeded', fromMemo: true, durationMs: 5000 }, { id: 'c', status: 'failed', fromMemo: false, durationMs: 9000 }] },
      { steps: [{ id: 'a', status: 'succeeded', fromMemo: false, durationMs: 2050 }, { id: 'b', status: 'succeeded', fromMemo: false, durationMs: 4000 }, { id: 'd', status: 'succeeded', fromMemo: false, durationMs: 0 }] },
    ]);
    expect(sec).toEqual({ a: 1.5, b: 4, d: 0.1 });
  });

  it('turns a peer ws:// URL into the http:// API base', () => {
    expect(apiBase('ws://127.0.0.1:8080/v1/peer')).toBe('http://127.0.0.1:8080');
    expect(apiBase('wss://ci.example.com')).toBe('https://ci.example.com');
    expect(apiBase('http://h:1/')).toBe('http://h:1');
  });
});
