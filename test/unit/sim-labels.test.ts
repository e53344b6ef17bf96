import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadWorkloadFile } from '../../bench/workload-file.js';
import { planSchedule } from '../../server/sim/plan.js';
import { simulate } from '../../server/sim/simulate.js';
import type { SchemaDef } from '../../shared/schema-file.js';

/** Issue 19 in the dry run: labelled peers in `taskshard plan` and in simulator workload groups. */
const schema: SchemaDef = {
  id: 'ml',
  universe: '//...',
  steps: [
    { id: 'lint', target: '//lint/...', needs: [], estimateSec: 60 },
    { id: 'build', target: '//build/...', needs: [], estimateSec: 300 },
    { id: 'train', target: '//train/...', needs: [], estimateSec: 900, requires: ['gpu'] },
    { id: 'eval', target: '//eval/...', needs: ['train'], estimateSec: 120 },
  ],
};

describe('plan with labelled peers', () => {
  it('puts the gpu step on the GPU peer only; without one it is unshared, with what needs it', () => {
    const withGpu = planSchedule({ schema, peerCounts: [3], durationsSec: new Map(), peerLabels: [['arch:x64'], ['gpu', 'arch:x64'], []] }).counts[0]!;
    const ranTrain = withGpu.perPeer.filter((p) => p.runs.some((r) => r.stepId === 'train')).map((p) => p.peerId);
    expect(ranTrain).toEqual(['p2']);
    expect(withGpu.perPeer.map((p) => p.labels)).toEqual([['arch:x64'], ['arch:x64', 'gpu'], []]);
    expect(withGpu.unshared).toEqual([]);
    // train (15 min) then eval (2 min) is the critical path, and it runs on the GPU peer's side.
    expect(withGpu.policies.taskshard.makespanMs).toBe(17 * 60_000);

    const noGpu = planSchedule({ schema, peerCounts: [3], durationsSec: new Map(), peerLabels: [['arch:x64']] }).counts[0]!;
    expect(noGpu.unshared).toEqual(['train', 'eval']);
    expect(noGpu.perPeer.flatMap((p) => p.runs.map((r) => r.stepId)).sort()).toEqual(['build', 'lint']);
    expect(noGpu.policies.taskshard.makespanMs).toBe(5 * 60_000);
  });
});

let dir: string | null = null;
afterEach(() => {
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function loadWorkloadText(text: string): ReturnType<typeof loadWorkloadFile> {
  dir ??= mkdtempSync(join(tmpdir(), 'taskshard-sim-labels-'));
  const file = join(dir, 'workload.json');
  writeFileSync(file, text);
  return loadWorkloadFile(file);
}

describe('simulator workload groups with labels', () => {
  it('one GPU runner per PR: the gpu step runs only there, once per cohort', () => {
    const text = JSON.stringify({
      name: 'gpu-runner',
      description: 'two PRs of three jobs, one job of each with a GPU',
      schema,
      groups: [
        { name: 'pr-1', peers: 3, atSec: 0, labels: ['arch:x64'], peerLabels: [['gpu']] },
        { name: 'pr-2', peers: 3, atSec: 60, patchsets: ['refs/changes/2'], peerLabels: [[], [], ['gpu']] },
      ],
    });
    const loaded = loadWorkloadText(text);
    if (!loaded.ok) throw new Error(loaded.lines.join('\n'));
    expect(loaded.workload.peers.find((p) => p.peerId === 'pr-1-1')!.registration.labels).toEqual(['arch:x64', 'gpu']);
    expect(loaded.workload.peers.find((p) => p.peerId === 'pr-1-2')!.registration.labels).toEqual(['arch:x64']);
    expect(loaded.workload.peers.find((p) => p.peerId === 'pr-2-1')!.registration).not.toHaveProperty('labels');
    const report = simulate(loaded.workload);
    const train = report.runs.taskshard.runs.filter((r) => r.stepId === 'train' && !r.aborted).map((r) => r.peerId);
    expect(train.sort()).toEqual(['pr-1-1', 'pr-2-3']);
  });

  it('refuses labels for more peers than the group has', () => {
    const text = JSON.stringify({ name: 'x', description: 'x', schema, groups: [{ name: 'g', peers: 1, atSec: 0, peerLabels: [['gpu'], ['gpu']] }] });
    const loaded = loadWorkloadText(text);
    expect(loaded.ok).toBe(false);
    if (!loaded.ok) expect(loaded.lines[0]).toMatch(/groups\[0\]\.peerLabels: lists labels for 2 peers; the group has 1/);
  });
});
