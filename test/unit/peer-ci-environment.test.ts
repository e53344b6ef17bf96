import { describe, expect, it } from 'vitest';
import { detectCiEnvironment } from '../../peer/ci-environment.js';

describe('detectCiEnvironment', () => {
  it('recognizes no CI system in a plain environment', () => {
    expect(detectCiEnvironment({ HOME: '/home/me', PATH: '/bin' })).toBeNull();
    expect(detectCiEnvironment({ GITHUB_ACTIONS: 'false', CI: 'true' })).toBeNull();
  });

  it('GitHub Actions, push: the branch is the base, the built commit pins it, matrix jobs are not unique', () => {
    const ci = detectCiEnvironment({
      GITHUB_ACTIONS: 'true',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REPOSITORY: 'acme/mono',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REF_NAME: 'main',
      GITHUB_SHA: 'ABCDEF0123456789abcdef0123456789abcdef01',
      GITHUB_WORKFLOW: 'CI',
      GITHUB_RUN_ID: '9001',
      GITHUB_RUN_ATTEMPT: '2',
      GITHUB_JOB: 'build',
    });
    expect(ci).toEqual({
      provider: 'github-actions',
      repo: 'https://github.com/acme/mono',
      baseRef: 'main',
      baseSha: 'abcdef0123456789abcdef0123456789abcdef01',
      changeRef: null,
      pipelineName: 'CI',
      jobId: 'gh-9001-2-build',
      jobIdUnique: false,
      jobUrl: 'https://github.com/acme/mono/actions/runs/9001/attempts/2',
    });
  });

  it('GitHub Actions, pull request: base branch and the PR ref', () => {
    const ci = detectCiEnvironment({
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'acme/mono',
      GITHUB_BASE_REF: 'main',
      GITHUB_REF: 'refs/pull/42/merge',
      GITHUB_REF_NAME: '42/merge',
      GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    });
    expect(ci).toMatchObject({ repo: 'acme/mono', baseRef: 'main', changeRef: 'refs/pull/42/merge' });
  });

  it('GitLab CI: merge request pipeline; never the token-bearing CI_REPOSITORY_URL', () => {
    const ci = detectCiEnvironment({
      GITLAB_CI: 'true',
      CI_PROJECT_URL: 'https://gitlab.com/acme/mono',
      CI_REPOSITORY_URL: 'https://gitlab-ci-token:SECRET@gitlab.com/acme/mono.git',
      CI_MERGE_REQUEST_IID: '17',
      CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'develop',
      CI_COMMIT_REF_NAME: 'feature/x',
      CI_COMMIT_SHA: '1111111111111111111111111111111111111111',
      CI_JOB_ID: '5550123',
      CI_JOB_URL: 'https://gitlab.com/acme/mono/-/jobs/5550123',
    });
    expect(ci).toEqual({
      provider: 'gitlab-ci',
      repo: 'https://gitlab.com/acme/mono',
      baseRef: 'develop',
      baseSha: '1111111111111111111111111111111111111111',
      changeRef: 'refs/merge-requests/17/head',
      pipelineName: null,
      jobId: 'gitlab-5550123',
      jobIdUnique: true,
      jobUrl: 'https://gitlab.com/acme/mono/-/jobs/5550123',
    });
  });

  it('GitLab CI: branch pipeline', () => {
    expect(detectCiEnvironment({ GITLAB_CI: 'true', CI_PROJECT_URL: 'https://gitlab.com/a/b', CI_COMMIT_BRANCH: 'main', CI_JOB_ID: '1' })).toMatchObject({
      baseRef: 'main',
      changeRef: null,
      baseSha: null,
    });
  });

  it('Buildkite: pull request base branch; "false" means no pull request', () => {
    const pr = detectCiEnvironment({
      BUILDKITE: 'true',
      BUILDKITE_REPO: 'git@github.com:acme/mono.git',
      BUILDKITE_BRANCH: 'feature',
      BUILDKITE_PULL_REQUEST: '7',
      BUILDKITE_PULL_REQUEST_BASE_BRANCH: 'main',
      BUILDKITE_COMMIT: 'HEAD',
      BUILDKITE_JOB_ID: '0190-aa',
      BUILDKITE_PIPELINE_SLUG: 'mono',
    });
    expect(pr).toMatchObject({ provider: 'buildkite', repo: 'git@github.com:acme/mono.git', baseRef: 'main', changeRef: 'refs/pull/7/head', baseSha: null, jobId: 'buildkite-0190-aa', jobIdUnique: true, pipelineName: 'mono' });
    const push = detectCiEnvironment({ BUILDKITE: 'true', BUILDKITE_REPO: 'r', BUILDKITE_BRANCH: 'main', BUILDKITE_PULL_REQUEST: 'false', BUILDKITE_JOB_ID: 'j' });
    expect(push).toMatchObject({ baseRef: 'main', changeRef: null });
  });

  it('CircleCI: parallel nodes of one job get distinct ids; PR number from the URL', () => {
    const env = {
      CIRCLECI: 'true',
      CIRCLE_REPOSITORY_URL: 'https://github.com/acme/mono',
      CIRCLE_BRANCH: 'feature',
      CIRCLE_SHA1: 'abcdef1',
      CIRCLE_PULL_REQUEST: 'https://github.com/acme/mono/pull/99',
      CIRCLE_WORKFLOW_JOB_ID: 'wf-job-1',
      CIRCLE_JOB: 'build',
    };
    const n0 = detectCiEnvironment({ ...env, CIRCLE_NODE_INDEX: '0' });
    const n1 = detectCiEnvironment({ ...env, CIRCLE_NODE_INDEX: '1' });
    expect(n0).toMatchObject({ provider: 'circleci', baseRef: 'feature', baseSha: 'abcdef1', changeRef: 'refs/pull/99/head', jobId: 'circleci-wf-job-1-0', jobIdUnique: true });
    expect(n1!.jobId).toBe('circleci-wf-job-1-1');
  });

  it('Jenkins: Gerrit trigger, multibranch PR, plain branch; credentials stripped from GIT_URL', () => {
    const gerrit = detectCiEnvironment({
      JENKINS_URL: 'https://ci.example.com/',
      GIT_URL: 'https://bot:hunter2@gerrit.example.com/mono',
      GERRIT_REFSPEC: 'refs/changes/45/12345/2',
      GERRIT_BRANCH: 'main',
      GIT_COMMIT: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef',
      BUILD_TAG: 'jenkins-mono-check-77',
      STAGE_NAME: 'shard 2',
      JOB_NAME: 'mono-check',
    });
    expect(gerrit).toEqual({
      provider: 'jenkins',
      repo: 'https://gerrit.example.com/mono',
      baseRef: 'main',
      baseSha: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef',
      changeRef: 'refs/changes/45/12345/2',
      pipelineName: 'mono-check',
      jobId: 'jenkins-mono-check-77-shard 2',
      jobIdUnique: false,
      jobUrl: null,
    });
    expect(detectCiEnvironment({ JENKINS_URL: 'x', CHANGE_ID: '12', CHANGE_TARGET: 'main', BRANCH_NAME: 'PR-12', GIT_URL: 'r' })).toMatchObject({ baseRef: 'main', changeRef: 'PR-12' });
    expect(detectCiEnvironment({ JENKINS_HOME: '/var/jenkins', GIT_BRANCH: 'origin/release-1', GIT_URL: 'r', JOB_NAME: 'j', BUILD_NUMBER: '5' })).toMatchObject({
      baseRef: 'release-1',
      changeRef: null,
      jobId: 'jenkins-j-5',
    });
  });

  it('links the job page of each CI system, or null when there is none or it is no safe http(s) URL', () => {
    // GitHub Actions: the run (and attempt); without an attempt, the run.
    const gh = { GITHUB_ACTIONS: 'true', GITHUB_SERVER_URL: 'https://ghe.example.com/', GITHUB_REPOSITORY: 'acme/mono', GITHUB_RUN_ID: '77' };
    expect(detectCiEnvironment(gh)!.jobUrl).toBe('https://ghe.example.com/acme/mono/actions/runs/77');
    expect(detectCiEnvironment({ ...gh, GITHUB_RUN_ATTEMPT: '3' })!.jobUrl).toBe('https://ghe.example.com/acme/mono/actions/runs/77/attempts/3');
    expect(detectCiEnvironment({ ...gh, GITHUB_RUN_ID: '' })!.jobUrl).toBeNull();
    expect(detectCiEnvironment({ ...gh, GITHUB_REPOSITORY: '../../evil' })!.jobUrl).toBeNull();
    // Buildkite: the build page scrolled to the job.
    expect(detectCiEnvironment({ BUILDKITE: 'true', BUILDKITE_BUILD_URL: 'https://buildkite.com/acme/mono/builds/12', BUILDKITE_JOB_ID: '0190-aa' })!.jobUrl).toBe('https://buildkite.com/acme/mono/builds/12#0190-aa');
    expect(detectCiEnvironment({ CIRCLECI: 'true', CIRCLE_BUILD_URL: 'https://circleci.com/gh/acme/mono/123' })!.jobUrl).toBe('https://circleci.com/gh/acme/mono/123');
    expect(detectCiEnvironment({ JENKINS_URL: 'https://ci.example.com/', BUILD_URL: 'https://ci.example.com/job/mono/5/' })!.jobUrl).toBe('https://ci.example.com/job/mono/5/');
    expect(detectCiEnvironment({ JENKINS_URL: 'x', RUN_DISPLAY_URL: 'https://ci.example.com/blue/mono/5' })!.jobUrl).toBe('https://ci.example.com/blue/mono/5');
    // Never a credential, another scheme, a relative or an over-long URL.
    expect(detectCiEnvironment({ GITLAB_CI: 'true', CI_JOB_URL: 'https://user:token@gitlab.com/a/-/jobs/1' })!.jobUrl).toBeNull();
    expect(detectCiEnvironment({ GITLAB_CI: 'true', CI_JOB_URL: 'javascript:alert(1)' })!.jobUrl).toBeNull();
    expect(detectCiEnvironment({ GITLAB_CI: 'true', CI_JOB_URL: '/a/-/jobs/1' })!.jobUrl).toBeNull();
    expect(detectCiEnvironment({ GITLAB_CI: 'true', CI_JOB_URL: `https://gitlab.com/${'a'.repeat(1100)}` })!.jobUrl).toBeNull();
    expect(detectCiEnvironment({ GITLAB_CI: 'true', CI_JOB_ID: '1' })!.jobUrl).toBeNull();
  });

  it('drops values a hello would reject (control characters, over-long refs, non-hex shas)', () => {
    const ci = detectCiEnvironment({ GITLAB_CI: 'true', CI_PROJECT_URL: 'https://x/y\n', CI_COMMIT_BRANCH: 'a'.repeat(300), CI_COMMIT_SHA: 'not-a-sha', CI_JOB_ID: '1' });
    expect(ci).toMatchObject({ repo: 'https://x/y', baseRef: null, baseSha: null });
    const bad = detectCiEnvironment({ GITLAB_CI: 'true', CI_PROJECT_URL: 'https://x/\u0007y', CI_JOB_ID: '1' });
    expect(bad!.repo).toBeNull();
  });
});
