import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../shared/protocol.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { CoreHarness } from '../helpers/core-harness.js';

/**
 * Issue 19: peer labels and step requirements, on the pure core with a fake clock.
 * The harness checks every invariant over all state after each input.
 */
function schema(steps: { id: string; needs?: string[]; requires?: string[]; estimateSec?: number }[]): SchemaDef {
  return {
    id: 'ml',
    universe: '//u/...',
    steps: steps.map((s) => ({ id: s.id, target: `//${s.id}/...`, needs: s.needs ?? [], ...(s.estimateSec === undefined ? {} : { estimateSec: s.estimateSec }), ...(s.requires ? { requires: s.requires } : {}) })),
  };
}

const gpu = { labels: ['arch:x64', 'gpu'] };
const cpu = { labels: ['arch:x64'] };

function complete(h: CoreHarness, peerId: string): Extract<ServerMessage, { type: 'complete' }> | undefined {
  return h.sent(peerId).find((m): m is Extract<ServerMessage, { type: 'complete' }> => m.type === 'complete');
}

function stepStatus(h: CoreHarness, stepId: string): string | undefined {
  const steps = h.scheduler.dump().steps.filter((s) => s.stepId === stepId);
  return steps[steps.length - 1]?.status;
}

describe('assignment by labels', () => {
  it('gives a step only to a peer whose labels include all it requires; priority works among the steps a peer can run', () => {
    // train has the longest path, but only the GPU peer may have it; the CPU peers get the rest by priority.
    const h = new CoreHarness(schema([{ id: 'lint', estimateSec: 10 }, { id: 'train', requires: ['gpu'], estimateSec: 900 }, { id: 'build', estimateSec: 300 }, { id: 'arm', requires: ['gpu', 'arch:arm64'] }]));
    h.hello('cpu1', { reg: cpu });
    h.hello('cpu2', { reg: cpu });
    expect(h.lastAssign('cpu1')?.stepId).toBe('build');
    expect(h.lastAssign('cpu2')?.stepId).toBe('lint');
    h.hello('gpu1', { reg: gpu });
    expect(h.lastAssign('gpu1')?.stepId).toBe('train');
    // arm needs arch:arm64 too: nobody gets it.
    expect(h.effects.filter((e) => e.kind === 'granted' && e.stepId === 'arm')).toEqual([]);
  });

  it('peers without labels (Task Director clients, old peers) get only steps without requires', () => {
    const h = new CoreHarness(schema([{ id: 'train', requires: ['gpu'], estimateSec: 900 }, { id: 'a' }, { id: 'b' }]));
    h.hello('td:1', { resumable: false });
    h.hello('old');
    expect(h.lastAssign('td:1')?.stepId).toBe('a');
    expect(h.lastAssign('old')?.stepId).toBe('b');
  });

  it('retries a failed labelled step on another capable peer, never on one without the label', () => {
    const h = new CoreHarness(schema([{ id: 'train', requires: ['gpu'] }, { id: 'slow', estimateSec: 3600 }]));
    h.hello('g1', { reg: gpu });
    h.hello('c1', { reg: cpu });
    h.hello('g2', { reg: gpu });
    const first = h.lastAssign('g1')!;
    expect(first.stepId).toBe('slow');
    const train = h.lastAssign('g2')!;
    expect(train.stepId).toBe('train');
    h.finish('g2', train.leaseId, 'train', false);
    // The retry skips c1 (no gpu) and g2 (failed it) while g1 could take it: g1 is busy, so it waits for g1.
    expect(h.lastAssign('c1')).toBeUndefined();
    h.finish('g1', first.leaseId, 'slow');
    expect(h.lastAssign('g1')?.stepId).toBe('train');
  });
});

describe('a peer never waits on a step it could never run', () => {
  it('is told complete at once when only steps it lacks labels for are left, and the GPU peer still builds them', () => {
    const h = new CoreHarness(schema([{ id: 'a' }, { id: 'train', requires: ['gpu'], estimateSec: 600 }]));
    h.hello('cpu1', { reg: cpu });
    h.hello('gpu1', { reg: gpu });
    const a = h.lastAssign('cpu1')!;
    expect(a.stepId).toBe('a');
    const train = h.lastAssign('gpu1')!;
    expect(train.stepId).toBe('train');
    h.finish('cpu1', a.leaseId, 'a');
    const released = complete(h, 'cpu1');
    expect(released).toMatchObject({ outcome: 'succeeded', summary: { builtHere: ['a'], notRunnable: [{ stepId: 'train', requires: ['gpu'] }] } });
    expect(released!.summary).not.toHaveProperty('unshared');
    expect(h.sent('cpu1').filter((m) => m.type === 'wait')).toEqual([]);
    // The cohort stays open for the GPU peer, which finishes and completes it.
    expect(complete(h, 'gpu1')).toBeUndefined();
    h.finish('gpu1', train.leaseId, 'train');
    expect(complete(h, 'gpu1')).toMatchObject({ outcome: 'succeeded', summary: { builtHere: ['train'], builtByOthers: [{ stepId: 'a', peerId: 'cpu1' }] } });
    expect(complete(h, 'gpu1')!.summary).not.toHaveProperty('notRunnable');
  });

  it('waits while it can still run something (a step that needs a labelled one)', () => {
    const h = new CoreHarness(schema([{ id: 'train', requires: ['gpu'] }, { id: 'eval', needs: ['train'] }]));
    h.hello('gpu1', { reg: gpu });
    h.hello('cpu1', { reg: cpu });
    expect(h.sent('cpu1').map((m) => m.type)).toEqual(['welcome', 'wait']);
    const train = h.lastAssign('gpu1')!;
    h.finish('gpu1', train.leaseId, 'train');
    expect(['eval', undefined]).toContain(h.lastAssign('cpu1')?.stepId ?? h.lastAssign('gpu1')?.stepId);
  });

  it('a failure of the labelled step reaches the peers still waiting on it, not those already released', () => {
    const h = new CoreHarness(schema([{ id: 'train', requires: ['gpu'] }, { id: 'eval', needs: ['train'] }, { id: 'docs' }]), { maxFailures: 1 });
    h.hello('gpu1', { reg: gpu });
    h.hello('cpu1', { reg: cpu });
    h.hello('arm1', { reg: { labels: ['arch:arm64'] } });
    const train = h.lastAssign('gpu1')!;
    const docs = h.lastAssign('cpu1')!;
    expect(docs.stepId).toBe('docs');
    // arm1 can run eval (no requires) later: it waits.
    expect(h.sent('arm1').map((m) => m.type)).toEqual(['welcome', 'wait']);
    h.finish('gpu1', train.leaseId, 'train', false, { exitCode: 3 });
    const failedTo = (p: string): boolean => h.sent(p).some((m) => m.type === 'step.update' && m.stepId === 'train' && m.state === 'failed');
    expect(failedTo('arm1')).toBe(true);
    expect(failedTo('gpu1')).toBe(true);
    h.finish('cpu1', docs.leaseId, 'docs');
    expect(complete(h, 'arm1')).toMatchObject({ outcome: 'failed' });
  });

  it('a peer released before the labelled step fails is not told of the failure', () => {
    const h = new CoreHarness(schema([{ id: 'train', requires: ['gpu'] }, { id: 'eval', needs: ['train'], requires: ['gpu'] }]), { maxFailures: 1 });
    h.hello('gpu1', { reg: gpu });
    h.hello('cpu1', { reg: cpu });
    expect(complete(h, 'cpu1')).toMatchObject({ outcome: 'succeeded', summary: { notRunnable: [{ stepId: 'train' }, { stepId: 'eval' }] } });
    const train = h.lastAssign('gpu1')!;
    h.finish('gpu1', train.leaseId, 'train', false);
    expect(h.sent('cpu1').map((m) => m.type)).toEqual(['welcome', 'complete']);
    expect(complete(h, 'gpu1')).toMatchObject({ outcome: 'failed', summary: { failed: [{ stepId: 'train' }, { stepId: 'eval' }] } });
  });
});

describe('no capable member: unshared', () => {
  it('resolves a labelled step nobody connected can run as unshared once everything else is resolved, with what it needs', () => {
    const h = new CoreHarness(schema([{ id: 'a' }, { id: 'train', requires: ['gpu', 'arch:x64'] }, { id: 'eval', needs: ['train'] }]));
    h.hello('cpu1', { reg: cpu });
    h.hello('cpu2', { reg: cpu });
    const a = h.lastAssign('cpu1')!;
    // cpu2 could run eval (once train succeeds): it waits, and nothing is unshared while a runs.
    expect(h.sent('cpu2').map((m) => m.type)).toEqual(['welcome', 'wait']);
    expect(stepStatus(h, 'train')).toBe('pending');
    h.clock.advance(5000);
    h.finish('cpu1', a.leaseId, 'a');
    expect(stepStatus(h, 'train')).toBe('unshared');
    expect(stepStatus(h, 'eval')).toBe('unshared');
    const steps = h.scheduler.dump().steps;
    expect(steps.find((s) => s.stepId === 'train')!.unsharedCause).toEqual({ kind: 'no-capable-member', requires: ['gpu', 'arch:x64'], missing: ['gpu'] });
    expect(steps.find((s) => s.stepId === 'eval')!.unsharedCause).toEqual({ kind: 'need-unshared', need: 'train' });
    for (const p of ['cpu1', 'cpu2']) {
      const done = complete(h, p);
      expect(done?.outcome).toBe('succeeded');
      expect(done!.summary.unshared).toEqual([
        { stepId: 'train', reason: "no connected peer has gpu (requires gpu, arch:x64); each peer's universe build covers it" },
        { stepId: 'eval', reason: `needs "train", which no connected peer could build; each peer's universe build covers it` },
      ]);
    }
    expect(h.scheduler.dump().cohorts[0]).toMatchObject({ status: 'complete', outcome: { kind: 'succeeded' } });
  });

  it('names the labels nobody connected had, or says that no single peer has them all', () => {
    const alone = new CoreHarness(schema([{ id: 'sign', requires: ['os:macos', 'gpu'] }]));
    alone.hello('mac', { reg: { labels: ['os:macos'] } });
    expect(alone.scheduler.dump().steps[0]).toMatchObject({ status: 'unshared', unsharedCause: { missing: ['gpu'] } });

    const h = new CoreHarness(schema([{ id: 'sign', requires: ['os:macos', 'gpu'] }, { id: 'x' }]));
    h.hello('mac', { reg: { labels: ['os:macos'] } });
    h.hello('g', { reg: { labels: ['gpu'] } });
    const x = h.lastAssign('mac')!;
    expect(h.sent('g').map((m) => m.type)).toEqual(['welcome', 'wait']);
    h.finish('mac', x.leaseId, 'x');
    const sign = h.scheduler.dump().steps.find((s) => s.stepId === 'sign');
    expect(sign).toMatchObject({ status: 'unshared', unsharedCause: { kind: 'no-capable-member', requires: ['os:macos', 'gpu'], missing: [] } });
    for (const p of ['mac', 'g']) expect(complete(h, p)!.summary.unshared![0]!.reason).toBe("no connected peer has all of os:macos, gpu; each peer's universe build covers it");
  });

  it('a capable peer that joins while other steps still run picks the step up', () => {
    const h = new CoreHarness(schema([{ id: 'slow', estimateSec: 3600 }, { id: 'train', requires: ['gpu'] }]));
    h.hello('cpu1', { reg: cpu });
    h.hello('cpu2', { reg: cpu });
    const slow = h.lastAssign('cpu1')!;
    expect(slow.stepId).toBe('slow');
    expect(stepStatus(h, 'train')).toBe('pending');
    h.clock.advance(60_000);
    h.tick();
    h.hello('gpu1', { reg: gpu });
    const train = h.lastAssign('gpu1')!;
    expect(train.stepId).toBe('train');
    h.finish('cpu1', slow.leaseId, 'slow');
    // The CPU peers can run nothing that is left: released, the GPU peer still building.
    expect(complete(h, 'cpu2')).toMatchObject({ outcome: 'succeeded', summary: { builtByOthers: [{ stepId: 'slow', peerId: 'cpu1' }], notRunnable: [{ stepId: 'train', requires: ['gpu'] }] } });
    h.finish('gpu1', train.leaseId, 'train');
    expect(complete(h, 'gpu1')).toMatchObject({ outcome: 'succeeded', summary: { builtHere: ['train'], builtByOthers: [{ stepId: 'slow', peerId: 'cpu1' }] } });
    expect(stepStatus(h, 'train')).toBe('succeeded');
  });

  it('when the only capable peer is lost (grace over), the step is unshared for the others: exactly at the grace deadline', () => {
    const h = new CoreHarness(schema([{ id: 'a' }, { id: 'train', requires: ['gpu'] }, { id: 'report', needs: ['train'] }]), { leaseGraceMs: 10_000 });
    h.hello('gpu1', { reg: gpu });
    h.hello('cpu1', { reg: cpu });
    const train = h.lastAssign('gpu1')!;
    expect(train.stepId).toBe('train');
    const a = h.lastAssign('cpu1')!;
    h.finish('cpu1', a.leaseId, 'a');
    // cpu1 can run report once train succeeds: it waits.
    expect(complete(h, 'cpu1')).toBeUndefined();
    h.disconnect('gpu1');
    h.advance(9_999);
    expect(stepStatus(h, 'train')).toBe('leased');
    h.advance(1);
    expect(stepStatus(h, 'train')).toBe('unshared');
    expect(stepStatus(h, 'report')).toBe('unshared');
    expect(complete(h, 'cpu1')!.summary.unshared!.map((u) => u.stepId)).toEqual(['train', 'report']);
  });

  it('never unshares a step without requires, nor while no member is connected', () => {
    const h = new CoreHarness(schema([{ id: 'a' }, { id: 'train', requires: ['gpu'] }]), { leaseGraceMs: 10_000 });
    h.hello('cpu1', { reg: cpu });
    const a = h.lastAssign('cpu1')!;
    h.disconnect('cpu1');
    h.advance(10_000);
    expect(stepStatus(h, 'a')).toBe('pending');
    expect(stepStatus(h, 'train')).toBe('pending');
    expect(h.scheduler.dump().cohorts[0]!.status).toBe('open');
    void a;
  });
});
