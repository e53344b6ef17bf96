import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { tempDir } from '../helpers/temp-dir.js';
import { countBy, endPeerWorkspace, newPeerWorkspace, readStepLog, startAuthority, startPeer, untilLog } from '../helpers/peer-e2e.js';

/**
 * Issue 19 end to end: `taskshard peer` processes with labels against a real
 * `taskshard server`, and a schema whose `train` step requires `gpu`. What ran
 * where is read from the step log the step script appends to.
 */

let dir: ReturnType<typeof tempDir>;
let log: string;
let script: string;
let schema: string;
let gate: string;

beforeEach(() => {
  ({ dir, log, script, schema, gate } = newPeerWorkspace('taskshard-labels-e2e-'));
  writeFileSync(
    schema,
    JSON.stringify({
      id: 'ml',
      universe: '//...',
      steps: [
        { id: 's1', target: '//s1/...' },
        { id: 's2', target: '//s2/...' },
        { id: 's3', target: '//s3/...' },
        { id: 'train', target: '//train/...', requires: ['gpu'], estimateSec: 600 },
      ],
    }),
  );
});

afterEach(() => endPeerWorkspace({ dir, log, script, schema, gate }));

const arch = `arch:${process.arch}`;

async function json(url: string): Promise<unknown> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.json();
}

describe('steps that require labels, with real peer processes', () => {
  it('builds the gpu step only on the peer with --label gpu; every peer exits 0', async () => {
    const auth = await startAuthority({ db: dir.file('a.db') });
    const peers = [
      startPeer({ name: 'gpu1', server: auth.wsUrl, schema, script, env: { GATE: gate }, args: ['--label', 'gpu'] }),
      startPeer({ name: 'cpu1', server: auth.wsUrl, schema, script, env: { GATE: gate } }),
      startPeer({ name: 'cpu2', server: auth.wsUrl, schema, script, env: { GATE: gate, TASKSHARD_LABELS: 'mem:64g' } }),
    ];
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    await untilLog(log, 'three steps running', (lines) => lines.filter((l) => l.event === 'start').length === 3);
    // While they run, the API shows each peer's labels and the step's requirement.
    const live = (await json(`${auth.httpUrl}/api/v1/peers`)) as { peers: { peerId: string; labels: string[]; cohortId: string }[] };
    const labelsOf = (id: string): string[] | undefined => live.peers.find((p) => p.peerId === id)?.labels;
    expect(labelsOf('gpu1')).toEqual([arch, 'gpu', `os:${process.platform}`].sort());
    expect(labelsOf('cpu1')).toEqual([arch, `os:${process.platform}`].sort());
    expect(labelsOf('cpu2')).toEqual([arch, 'mem:64g', `os:${process.platform}`].sort());
    writeFileSync(gate, '');
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0, 0]);

    const lines = readStepLog(log);
    expect(countBy(lines, 'done')).toEqual({ s1: 1, s2: 1, s3: 1, train: 1 });
    expect(lines.filter((l) => l.phase === 'step' && l.step === 'train').map((l) => `${l.event} ${l.peer}`)).toEqual(['start gpu1', 'done gpu1']);
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 3 });
    expect(peers[0]!.stdout).toMatch(/^taskshard: step train assigned/m);
    for (const p of peers) expect(p.stdout).toContain('exit 0: every step resolved and the universe built');
    const cohortId = live.peers[0]!.cohortId;
    const detail = (await json(`${auth.httpUrl}/api/v1/cohorts/${cohortId}`)) as { steps: { id: string; status: string; requires: string[]; builtBy: string | null }[] };
    expect(detail.steps.find((s) => s.id === 'train')).toMatchObject({ status: 'succeeded', requires: ['gpu'], builtBy: 'gpu1' });
  });

  it('resolves the gpu step as unshared in a cohort with no GPU peer; the summary, --report and API say so; every peer exits 0', async () => {
    const auth = await startAuthority({ db: dir.file('a.db') });
    const reports = ['cpu1', 'cpu2', 'cpu3'].map((n) => dir.file(`${n}.json`));
    const peers = ['cpu1', 'cpu2', 'cpu3'].map((name, i) => startPeer({ name, server: auth.wsUrl, schema, script, env: { GATE: gate }, args: ['--report', reports[i]!] }));
    await Promise.all(peers.map((p) => p.line(/joined cohort/)));
    await untilLog(log, 'three steps running', (lines) => lines.filter((l) => l.event === 'start').length === 3);
    writeFileSync(gate, '');
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0, 0]);

    const lines = readStepLog(log);
    expect(countBy(lines, 'done')).toEqual({ s1: 1, s2: 1, s3: 1 });
    expect(countBy(lines, 'done', 'universe')).toEqual({ universe: 3 });
    for (const [i, p] of peers.entries()) {
      expect(p.stdout).toMatch(/complete \(succeeded\): .* \/ unshared 1 \(train\)/);
      expect(p.stdout).toContain("step train unshared: no connected peer has gpu (requires gpu); each peer's universe build covers it");
      expect(p.stdout).toContain('exit 0: every step resolved and the universe built');
      const report = JSON.parse(readFileSync(reports[i]!, 'utf8')) as { labels: string[]; steps: { stepId: string; outcome: string; reason?: string }[]; totals: { unshared: number } };
      expect(report.labels).toEqual([arch, `os:${process.platform}`].sort());
      expect(report.steps.find((s) => s.stepId === 'train')).toMatchObject({ outcome: 'unshared', reason: expect.stringMatching(/no connected peer has gpu/) });
      expect(report.totals.unshared).toBe(1);
    }
    const cohorts = (await json(`${auth.httpUrl}/api/v1/cohorts`)) as { cohorts: { id: string }[] };
    const detail = (await json(`${auth.httpUrl}/api/v1/cohorts/${cohorts.cohorts[0]!.id}`)) as { steps: { id: string; status: string; unsharedReason: string | null; unsharedCause: unknown }[] };
    expect(detail.steps.find((s) => s.id === 'train')).toMatchObject({
      status: 'unshared',
      unsharedCause: { kind: 'no-capable-member', requires: ['gpu'], missing: ['gpu'] },
      unsharedReason: "no connected peer has gpu (requires gpu); each peer's universe build covers it",
    });
  });

  it('a bad label is a usage error naming the flag or the variable', async () => {
    const bad = startPeer({ name: 'bad', server: 'ws://127.0.0.1:9', schema, script, args: ['--label', 'gpu', '--label', 'bad!label'] });
    expect(await bad.exit()).toBe(2);
    expect(bad.stderr).toMatch(/--label\[1\]: label "bad!label" must use letters, digits/);
    const fromEnv = startPeer({ name: 'bad2', server: 'ws://127.0.0.1:9', schema, script, env: { TASKSHARD_LABELS: 'gpu,../x' } });
    expect(await fromEnv.exit()).toBe(2);
    expect(fromEnv.stderr).toMatch(/TASKSHARD_LABELS\[1\]: label "..\/x" must use/);
  });
});
