import { describe, expect, it } from 'vitest';
import { detectCiEnvironment } from '../../peer/ci-environment.js';
import type { GitFacts } from '../../peer/git-facts.js';
import { toPeerId, withSuffix } from '../../peer/peer-id.js';
import { resolveSource, type SourceFacts } from '../../peer/source-resolver.js';

const git: GitFacts = { remoteUrl: 'git@example.com:acme/mono.git', branch: 'feature', headSha: 'cafebabecafebabecafebabecafebabecafebabe' };

function facts(over: Partial<SourceFacts> = {}): SourceFacts & { gitCalls: number } {
  const f = {
    ci: null,
    gitCalls: 0,
    git: () => {
      f.gitCalls++;
      return git;
    },
    hostName: 'build box.local',
    processId: 4242,
    randomSuffix: () => 'a1b2c3',
    ...over,
  };
  return f;
}

const github = detectCiEnvironment({
  GITHUB_ACTIONS: 'true',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'acme/mono',
  GITHUB_BASE_REF: 'main',
  GITHUB_REF: 'refs/pull/42/merge',
  GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
  GITHUB_RUN_ID: '9001',
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_JOB: 'build',
  GITHUB_WORKFLOW: 'CI',
});

describe('resolveSource', () => {
  it('takes everything from the CI environment when no option is given, and never asks git', () => {
    const f = facts({ ci: github });
    const r = resolveSource({ patchsets: [] }, f);
    expect(r).toEqual({
      ok: true,
      source: {
        peerId: 'gh-9001-1-build-a1b2c3',
        repo: 'github.com/acme/mono',
        baseRef: 'main',
        baseSha: '0123456789abcdef0123456789abcdef01234567',
        changeRef: 'refs/pull/42/merge',
        patchsets: ['refs/pull/42/merge'],
        pipelineName: 'CI',
        detectedFrom: 'ci',
        ci: github,
      },
    });
    expect(f.gitCalls).toBe(0);
  });

  it('options win; any source option makes the source state yours (no detected sha or change ref)', () => {
    const r = resolveSource({ repo: 'r', baseRef: 'release', patchsets: ['refs/changes/1/1', 'refs/changes/2/1'], peerId: 'me', pipeline: 'gate' }, facts({ ci: github }));
    expect(r.ok && r.source).toMatchObject({
      peerId: 'me',
      repo: 'r',
      baseRef: 'release',
      baseSha: null,
      changeRef: null,
      patchsets: ['refs/changes/1/1', 'refs/changes/2/1'],
      pipelineName: 'gate',
    });
    const onlyChange = resolveSource({ changeRef: 'refs/changes/9/1', patchsets: [] }, facts({ ci: github }));
    expect(onlyChange.ok && onlyChange.source).toMatchObject({ baseRef: 'main', baseSha: null, changeRef: 'refs/changes/9/1', patchsets: ['refs/changes/9/1'] });
  });

  it('an explicit --base-ref alone keeps the detected sha (a later push never joins an earlier run)', () => {
    const fromCi = resolveSource({ baseRef: 'main', patchsets: [] }, facts({ ci: github }));
    expect(fromCi.ok && fromCi.source).toMatchObject({ baseRef: 'main', baseSha: '0123456789abcdef0123456789abcdef01234567', changeRef: 'refs/pull/42/merge' });
    const fromGit = resolveSource({ baseRef: 'release', patchsets: [] }, facts());
    expect(fromGit.ok && fromGit.source).toMatchObject({ baseRef: 'release', baseSha: 'cafebabecafebabecafebabecafebabecafebabe' });
  });

  it('falls back to git outside CI, and makes a unique default peer id', () => {
    const f = facts();
    const r = resolveSource({ patchsets: [] }, f);
    expect(r.ok && r.source).toMatchObject({
      peerId: 'build-box.local-4242-a1b2c3',
      repo: 'example.com/acme/mono',
      baseRef: 'feature',
      baseSha: 'cafebabecafebabecafebabecafebabecafebabe',
      changeRef: null,
      patchsets: [],
      pipelineName: 'default',
      detectedFrom: 'git',
    });
    expect(f.gitCalls).toBe(1);
  });

  it('a CI job id that is unique on its own is used as is', () => {
    const gitlab = detectCiEnvironment({ GITLAB_CI: 'true', CI_PROJECT_URL: 'https://gitlab.com/a/b', CI_COMMIT_BRANCH: 'main', CI_JOB_ID: '77' });
    const r = resolveSource({ patchsets: [] }, facts({ ci: gitlab }));
    expect(r.ok && r.source.peerId).toBe('gitlab-77');
  });

  it('names every missing piece it could not detect', () => {
    const r = resolveSource({ patchsets: [] }, facts({ git: () => ({ remoteUrl: null, branch: null, headSha: null }) }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.option)).toEqual(['repo', 'baseRef']);
    expect(r.problems[0]!.message).toContain('no CI system recognized');
  });
});

describe('peer ids', () => {
  it('folds any job name into the safe alphabet and length', () => {
    expect(toPeerId('jenkins-mono/check #77 (shard 2)')).toBe('jenkins-mono-check-77-shard-2');
    expect(toPeerId('..a..b..')).toBe('a.b');
    expect(toPeerId('///')).toBe('peer');
    expect(toPeerId('x'.repeat(300))).toHaveLength(128);
    const long = withSuffix('y'.repeat(300), 'abc123');
    expect(long).toHaveLength(128);
    expect(long.endsWith('-abc123')).toBe(true);
  });
});
