import { describe, expect, it } from 'vitest';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

function cohortOf(h: CoreHarness, peerId: string): string {
  const welcome = h.sent(peerId).find((m) => m.type === 'welcome');
  if (welcome?.type !== 'welcome') throw new Error(`${peerId} got no welcome`);
  return welcome.cohort.id;
}

describe('cohort matching', () => {
  it('puts peers with the same repo, base ref, cache, digest and source state in one cohort', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('a');
    h.hello('b');
    expect(cohortOf(h, 'a')).toBe('c1');
    expect(cohortOf(h, 'b')).toBe('c1');
    const welcome = h.sent('b')[0]!;
    expect(welcome).toEqual({
      type: 'welcome',
      protocol: 1,
      peerId: 'b',
      resumeToken: 'tok-b-2',
      resumed: false,
      cohort: { id: 'c1', peers: 2, steps: 3, resolved: 0, succeeded: [] },
      pingIntervalMs: 15_000,
    });
  });

  it.each([
    ['repo', { repo: 'other' }],
    ['base ref', { baseRef: 'release' }],
    ['cache id', { cacheId: 'cache-2' }],
    ['pipeline type', { pipelineType: 'dependent' as const }],
  ])('separates peers whose %s differs', (_what, reg) => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('a');
    h.hello('b', { reg });
    expect(cohortOf(h, 'b')).not.toBe(cohortOf(h, 'a'));
  });

  it('never shares between different digests of the same schema id, and says so', () => {
    const h = new CoreHarness(flatSchema(3, 'mono'));
    h.hello('a');
    const out = h.hello('b', { schema: flatSchema(4, 'mono') });
    expect(cohortOf(h, 'b')).toBe('c2');
    expect(out.effects.some((e) => e.kind === 'notice' && e.message === 'schema id seen with different digests')).toBe(true);
    expect(out.writes.some((w) => w.table === 'event' && w.row.kind === 'schema.digest-differs' && w.row.cohortId === 'c2')).toBe(true);
  });

  it('independent pipelines share only identical source states (base sha + patchset set)', () => {
    const h = new CoreHarness(flatSchema(2));
    const sha = 'a'.repeat(40);
    h.hello('a', { reg: { baseSha: sha, patchsets: ['p1', 'p2'] } });
    h.hello('b', { reg: { baseSha: sha, patchsets: ['p2', 'p1', 'p1'] } }); // same set
    h.hello('c', { reg: { baseSha: sha, patchsets: ['p1'] } });
    h.hello('d', { reg: { baseSha: 'b'.repeat(40), patchsets: ['p1', 'p2'] } });
    h.hello('e', { reg: { baseSha: null, patchsets: ['p1', 'p2'] } });
    expect(cohortOf(h, 'b')).toBe(cohortOf(h, 'a'));
    const others = ['c', 'd', 'e'].map((p) => cohortOf(h, p));
    expect(new Set([cohortOf(h, 'a'), ...others]).size).toBe(4);
  });

  it('dependent pipelines join the open cohort with the most patchsets in common', () => {
    const h = new CoreHarness(flatSchema(6));
    const dep = (patchsets: string[]) => ({ reg: { pipelineType: 'dependent' as const, patchsets } });
    h.hello('a', dep(['A']));
    h.hello('x', dep(['X']));
    h.hello('b', dep(['A', 'B'])); // shares A with a's cohort
    h.hello('xy', dep(['X', 'Y'])); // shares X with x's cohort
    h.hello('aby', dep(['A', 'B', 'Y'])); // A,B with c1 (2) vs Y with c2 (1)
    h.hello('z', dep(['Z'])); // nothing in common
    expect(cohortOf(h, 'b')).toBe('c1');
    expect(cohortOf(h, 'xy')).toBe('c2');
    expect(cohortOf(h, 'aby')).toBe('c1');
    expect(cohortOf(h, 'z')).toBe('c3');
  });

  it('dependent ties go to the larger cohort', () => {
    const h = new CoreHarness(flatSchema(6));
    const dep = (patchsets: string[]) => ({ reg: { pipelineType: 'dependent' as const, patchsets } });
    h.hello('a', dep(['A']));
    h.hello('b', dep(['B']));
    h.hello('b2', dep(['B', 'B2']));
    h.hello('ab', dep(['A', 'B'])); // one in common with each; c2 has two peers
    expect(cohortOf(h, 'ab')).toBe('c2');
  });

  it('multi-repo source states match when each of the joiner\'s repos is in the cohort at the same base ref', () => {
    const h = new CoreHarness(flatSchema(2));
    const dep = (repos: [string, string][], patchsets: string[]) => ({
      reg: { pipelineType: 'dependent' as const, repo: repos.map((r) => r[0]).join(','), baseRef: repos.map((r) => r[1]).join(','), repos: repos.map(([repo, baseRef]) => ({ repo, baseRef })), patchsets },
    });
    h.hello('xy', dep([['x', 'main'], ['y', 'main']], ['x:1', 'y:1']));
    h.hello('x', dep([['x', 'main']], ['x:1']));
    h.hello('x-release', dep([['x', 'release']], ['x:1']));
    h.hello('xz', dep([['x', 'main'], ['z', 'main']], ['x:1']));
    expect(cohortOf(h, 'x')).toBe(cohortOf(h, 'xy'));
    expect(cohortOf(h, 'x-release')).not.toBe(cohortOf(h, 'xy'));
    expect(cohortOf(h, 'xz')).not.toBe(cohortOf(h, 'xy'));
  });

  it('isolated peers get a cohort of their own and nobody joins it', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('a', { reg: { isolated: true } });
    h.hello('b', { reg: { isolated: true } });
    h.hello('c');
    expect(new Set(['a', 'b', 'c'].map((p) => cohortOf(h, p))).size).toBe(3);
  });

  it('a late peer of a completed cohort (same base sha) is told complete at once', () => {
    const h = new CoreHarness(flatSchema(1));
    const reg = { baseSha: 'c'.repeat(40) };
    h.hello('a', { reg });
    h.finish('a', h.lastAssign('a')!.leaseId, 's1');
    const out = h.hello('late', { reg });
    const msgs = messagesIn(out, h.conns.get('late')!);
    expect(msgs.map((m) => m.type)).toEqual(['welcome', 'complete']);
    expect(msgs[1]).toEqual({
      type: 'complete',
      cohortId: 'c1',
      outcome: 'succeeded',
      summary: { builtHere: [], builtByOthers: [{ stepId: 's1', peerId: 'a' }], fromMemo: [], failed: [], savedSec: 1, builtSec: 0, aloneSec: 1, spentSec: 0 },
    });
  });

  it('a dependent peer sharing a patchset with a finished cohort joins it and is told complete at once', () => {
    const h = new CoreHarness(flatSchema(1));
    const dep = (patchsets: string[]) => ({ reg: { pipelineType: 'dependent' as const, patchsets } });
    h.hello('a', dep(['c1']));
    h.finish('a', h.lastAssign('a')!.leaseId, 's1');
    h.hello('stacked', dep(['c1', 'c2']));
    expect(cohortOf(h, 'stacked')).toBe(cohortOf(h, 'a'));
    expect(h.sent('stacked').map((m) => m.type)).toEqual(['welcome', 'complete']);
  });

  it('a cohort with a failed step takes no new peers: a re-run starts fresh', () => {
    const h = new CoreHarness(dagSchema({ a: [] }), { maxFailures: 1 });
    h.hello('p');
    h.finish('p', h.lastAssign('p')!.leaseId, 'a', false);
    h.hello('rerun');
    expect(cohortOf(h, 'rerun')).toBe('c2');
  });
});
