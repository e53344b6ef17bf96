import { describe, expect, it } from 'vitest';
import { CoreHarness } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/**
 * Issue 13 in the core: an independent peer without a base sha never joins a
 * finished cohort, and a peer left alone is told why it could have had company.
 */

function welcomeOf(h: CoreHarness, peerId: string) {
  const welcome = h.sent(peerId).find((m) => m.type === 'welcome');
  if (welcome?.type !== 'welcome') throw new Error(`${peerId} got no welcome`);
  return welcome;
}

const sha = 'a'.repeat(40);

describe('never joining a finished cohort without a base sha', () => {
  it('an independent peer without a sha gets a fresh cohort instead of a finished one, and builds', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('first');
    h.finish('first', h.lastAssign('first')!.leaseId, 's1');
    h.hello('later-push');
    expect(welcomeOf(h, 'later-push').cohort.id).not.toBe(welcomeOf(h, 'first').cohort.id);
    expect(h.lastAssign('later-push')?.stepId).toBe('s1');
    expect(h.sent('later-push').some((m) => m.type === 'complete')).toBe(false);
  });

  it('still joins an open cohort without a sha (jobs running at the same time share)', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('a');
    h.hello('b');
    expect(welcomeOf(h, 'b').cohort.id).toBe(welcomeOf(h, 'a').cohort.id);
  });

  it('with a sha, with a cohort key, or in a dependent pipeline a finished cohort is still joined', () => {
    for (const reg of [{ baseSha: sha }, { cohortKey: 'run-7' }, { pipelineType: 'dependent' as const }]) {
      const h = new CoreHarness(flatSchema(1));
      h.hello('first', { reg });
      h.finish('first', h.lastAssign('first')!.leaseId, 's1');
      h.hello('late', { reg });
      expect(welcomeOf(h, 'late').cohort.id, JSON.stringify(reg)).toBe(welcomeOf(h, 'first').cohort.id);
      expect(h.sent('late').map((m) => m.type)).toEqual(['welcome', 'complete']);
    }
  });
});

describe('a cohort key is a matching field of its own', () => {
  it('peers with one key share whatever their refs; the cohort keeps real refs and its key; another key is another cohort', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('a', { reg: { cohortKey: 'run-7', baseRef: 'main', baseSha: sha, patchsets: ['refs/changes/1/1'] } });
    h.hello('b', { reg: { cohortKey: 'run-7', baseRef: 'release', baseSha: 'b'.repeat(40), patchsets: [] } });
    h.hello('c', { reg: { cohortKey: 'run-8', baseRef: 'main', baseSha: sha, patchsets: ['refs/changes/1/1'] } });
    h.hello('d', { reg: { baseRef: 'main', baseSha: sha, patchsets: ['refs/changes/1/1'] } });
    const id = welcomeOf(h, 'a').cohort.id;
    expect(welcomeOf(h, 'b').cohort.id).toBe(id);
    expect(welcomeOf(h, 'c').cohort.id).not.toBe(id);
    expect(welcomeOf(h, 'd').cohort.id).not.toBe(id); // same sources, no key: not the keyed cohort
    const record = h.writes.find((w) => w.table === 'cohort' && w.row.cohortId === id);
    expect(record?.table === 'cohort' && record.row).toMatchObject({ cohortKey: 'run-7', baseRef: 'main', baseSha: sha, patchsets: ['refs/changes/1/1'] });
  });

  it('a step built in a keyed cohort with a known sha is in the memo for that exact source state', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('first', { reg: { cohortKey: 'run-7', baseSha: sha } });
    h.finish('first', h.lastAssign('first')!.leaseId, 's1');
    h.hello('later', { reg: { cohortKey: 'run-9', baseSha: sha } });
    expect(welcomeOf(h, 'later').cohort.id).not.toBe(welcomeOf(h, 'first').cohort.id);
    const complete = h.sent('later').find((m) => m.type === 'complete');
    expect(complete?.type === 'complete' && complete.summary.fromMemo).toEqual(['s1']);
  });
});

describe('welcome says why a peer is alone', () => {
  it('another base sha or base ref, everything else equal: names both; another change (patchsets) is no reason', () => {
    const h = new CoreHarness(flatSchema(3, 'mono'));
    h.hello('a', { reg: { baseSha: sha } });
    h.hello('b', { reg: { baseSha: sha } });
    h.hello('other-sha', { reg: { baseSha: 'c'.repeat(40) } });
    expect(welcomeOf(h, 'other-sha').alone).toEqual([`2 peers on the same repo and schema are on base sha ${'a'.repeat(12)}…, yours is ${'c'.repeat(12)}…`]);
    h.hello('no-sha', { reg: { baseSha: null } });
    expect(welcomeOf(h, 'no-sha').alone).toEqual([
      `2 peers on the same repo and schema are on base sha ${'a'.repeat(12)}…, yours is unknown (no base sha)`,
      `1 peer on the same repo and schema are on base sha ${'c'.repeat(12)}…, yours is unknown (no base sha)`,
    ]);
    h.hello('release', { reg: { baseRef: 'release', baseSha: sha } });
    expect(welcomeOf(h, 'release').alone?.[0]).toBe('4 peers on the same repo and schema are on base ref main, yours is release');
    h.hello('change', { reg: { baseSha: sha, patchsets: ['refs/changes/9/1'] } });
    expect(welcomeOf(h, 'change').alone).toBeUndefined();
  });

  it('another digest of the same schema id: counts the peers and names both digests', () => {
    const h = new CoreHarness(flatSchema(3, 'mono'));
    h.hello('a', { reg: { baseSha: sha } });
    h.hello('b', { reg: { baseSha: sha } });
    h.hello('odd', { reg: { baseSha: sha }, schema: flatSchema(4, 'mono') });
    const alone = welcomeOf(h, 'odd').alone ?? [];
    expect(alone).toHaveLength(1);
    expect(alone[0]).toMatch(/^2 peers with schema mono on the same repo and sources have digest [0-9a-f]{12}…, yours is [0-9a-f]{12}… \(the schema files differ\)$/);
    expect(welcomeOf(h, 'a').alone).toBeUndefined();
    expect(welcomeOf(h, 'b').alone).toBeUndefined(); // b had company
  });

  it('another cache id, and another pipeline type, on the same repo and sha', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('x', { reg: { baseSha: sha, cacheId: 'bazel-prod' } });
    h.hello('y', { reg: { baseSha: sha, cacheId: 'bazel-prod' } });
    h.hello('me', { reg: { baseSha: sha, cacheId: 'bazel-dev' } });
    expect(welcomeOf(h, 'me').alone).toEqual(['2 peers on the same repo and sha use cache id bazel-prod, yours is bazel-dev']);
    h.hello('dep', { reg: { baseSha: sha, cacheId: 'bazel-prod', pipelineType: 'dependent' } });
    expect(welcomeOf(h, 'dep').alone).toEqual(['2 peers on the same repo and sha run an independent pipeline, yours is dependent']);
  });

  it('says nothing when no one could have been company (other sources, other repo, an isolated peer)', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('a', { reg: { baseSha: sha, cacheId: 'one' } });
    h.hello('other-sha', { reg: { baseSha: 'b'.repeat(40), cacheId: 'two' } });
    h.hello('other-repo', { reg: { baseSha: sha, repo: 'git@example.com:acme/other.git', cacheId: 'two' } });
    h.hello('iso', { reg: { baseSha: sha, cacheId: 'two', isolated: true } });
    for (const p of ['a', 'other-sha', 'other-repo', 'iso']) expect(welcomeOf(h, p).alone, p).toBeUndefined();
  });
});
