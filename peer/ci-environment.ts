import { jobUrlOrNull } from '../shared/job-url.js';
import { limits } from '../shared/limits.js';

/**
 * What a CI system tells a job about itself through its environment, for the
 * five systems taskshard knows. Pure: it reads only the env object it is given.
 *
 * Conventions, the same for every provider:
 * - `baseSha` is the commit the job builds (for a pull/merge request that is
 *   the commit CI checked out, e.g. GitHub's merge commit), which pins the
 *   exact source state;
 * - `changeRef` is the pull/merge request's ref when the job tests one;
 * - `jobId` names the job; `jobIdUnique` says whether it alone tells parallel
 *   jobs of one pipeline apart (GitHub matrix jobs share `GITHUB_JOB`, Jenkins
 *   parallel stages share `BUILD_TAG`; those get a random suffix later);
 * - `jobUrl` is the job's page in the CI system (the dashboard links it), an
 *   http(s) URL without credentials, or null when the environment has none.
 *   GitHub Actions has no per-job URL in its environment: it is the run's page
 *   (and attempt).
 */
export type Env = Readonly<Record<string, string | undefined>>;

export const ciProviders = ['github-actions', 'gitlab-ci', 'buildkite', 'circleci', 'jenkins'] as const;
export type CiProvider = (typeof ciProviders)[number];

export interface CiEnvironment {
  readonly provider: CiProvider;
  readonly repo: string | null;
  readonly baseRef: string | null;
  readonly baseSha: string | null;
  readonly changeRef: string | null;
  readonly pipelineName: string | null;
  readonly jobId: string;
  readonly jobIdUnique: boolean;
  readonly jobUrl: string | null;
}

/** The CI system this process runs in, or null when none is recognized. */
export function detectCiEnvironment(env: Env): CiEnvironment | null {
  if (env.GITHUB_ACTIONS === 'true') return githubActions(env);
  if (env.GITLAB_CI === 'true') return gitlabCi(env);
  if (env.BUILDKITE === 'true') return buildkite(env);
  if (env.CIRCLECI === 'true') return circleci(env);
  if (present(env.JENKINS_URL) || present(env.JENKINS_HOME)) return jenkins(env);
  return null;
}

function githubActions(env: Env): CiEnvironment {
  const pullRequest = present(env.GITHUB_BASE_REF);
  const repository = text(env.GITHUB_REPOSITORY);
  const server = text(env.GITHUB_SERVER_URL);
  return {
    provider: 'github-actions',
    repo: repoUrl(repository && server ? `${server.replace(/\/+$/, '')}/${repository}` : repository),
    baseRef: ref(pullRequest ? env.GITHUB_BASE_REF : (env.GITHUB_REF_NAME ?? stripPrefix(env.GITHUB_REF, 'refs/heads/'))),
    baseSha: sha(env.GITHUB_SHA),
    changeRef: pullRequest ? ref(env.GITHUB_REF) : null,
    pipelineName: name(env.GITHUB_WORKFLOW),
    jobId: joinParts('gh', env.GITHUB_RUN_ID, env.GITHUB_RUN_ATTEMPT, env.GITHUB_JOB),
    jobIdUnique: false,
    jobUrl: githubRunUrl(env),
  };
}

function gitlabCi(env: Env): CiEnvironment {
  const mergeRequest = text(env.CI_MERGE_REQUEST_IID);
  return {
    provider: 'gitlab-ci',
    // Never CI_REPOSITORY_URL: it carries the job token.
    repo: repoUrl(env.CI_PROJECT_URL ?? env.CI_PROJECT_PATH),
    baseRef: ref(mergeRequest ? env.CI_MERGE_REQUEST_TARGET_BRANCH_NAME : (env.CI_COMMIT_BRANCH ?? env.CI_COMMIT_REF_NAME)),
    baseSha: sha(env.CI_COMMIT_SHA),
    changeRef: mergeRequest ? ref(`refs/merge-requests/${mergeRequest}/head`) : null,
    pipelineName: name(env.CI_PIPELINE_NAME),
    jobId: joinParts('gitlab', env.CI_JOB_ID),
    jobIdUnique: present(env.CI_JOB_ID),
    jobUrl: jobUrlOrNull(env.CI_JOB_URL),
  };
}

function buildkite(env: Env): CiEnvironment {
  const pr = text(env.BUILDKITE_PULL_REQUEST);
  const pullRequest = pr !== null && pr !== 'false' ? pr : null;
  return {
    provider: 'buildkite',
    repo: repoUrl(env.BUILDKITE_REPO),
    baseRef: ref(pullRequest ? env.BUILDKITE_PULL_REQUEST_BASE_BRANCH : env.BUILDKITE_BRANCH),
    baseSha: sha(env.BUILDKITE_COMMIT),
    changeRef: pullRequest ? ref(`refs/pull/${pullRequest}/head`) : null,
    pipelineName: name(env.BUILDKITE_PIPELINE_SLUG),
    jobId: joinParts('buildkite', env.BUILDKITE_JOB_ID),
    jobIdUnique: present(env.BUILDKITE_JOB_ID),
    // The build's page, scrolled to this job.
    jobUrl: jobUrlOrNull(present(env.BUILDKITE_BUILD_URL) && present(env.BUILDKITE_JOB_ID) ? `${env.BUILDKITE_BUILD_URL.trim()}#${env.BUILDKITE_JOB_ID.trim()}` : env.BUILDKITE_BUILD_URL),
  };
}

function circleci(env: Env): CiEnvironment {
  const prNumber = text(env.CIRCLE_PR_NUMBER) ?? /\/pull\/(\d+)\/?$/.exec(env.CIRCLE_PULL_REQUEST ?? '')?.[1] ?? null;
  const job = text(env.CIRCLE_WORKFLOW_JOB_ID) ?? text(env.CIRCLE_BUILD_NUM);
  return {
    provider: 'circleci',
    repo: repoUrl(env.CIRCLE_REPOSITORY_URL),
    baseRef: ref(env.CIRCLE_BRANCH),
    baseSha: sha(env.CIRCLE_SHA1),
    changeRef: prNumber ? ref(`refs/pull/${prNumber}/head`) : null,
    pipelineName: name(env.CIRCLE_JOB),
    // Parallel copies of one job share its id; the node index tells them apart.
    jobId: joinParts('circleci', job, env.CIRCLE_NODE_INDEX ?? '0'),
    jobIdUnique: job !== null,
    jobUrl: jobUrlOrNull(env.CIRCLE_BUILD_URL),
  };
}

function jenkins(env: Env): CiEnvironment {
  const gerrit = text(env.GERRIT_REFSPEC);
  const changeId = text(env.CHANGE_ID);
  const branch = env.BRANCH_NAME ?? stripPrefix(stripPrefix(env.GIT_BRANCH, 'origin/'), 'refs/heads/');
  return {
    provider: 'jenkins',
    repo: repoUrl(env.GIT_URL ?? env.GERRIT_PROJECT),
    baseRef: ref(gerrit ? env.GERRIT_BRANCH : changeId ? env.CHANGE_TARGET : branch),
    baseSha: sha(env.GIT_COMMIT ?? env.GERRIT_PATCHSET_REVISION),
    changeRef: gerrit ? ref(gerrit) : changeId ? ref(env.BRANCH_NAME ?? `PR-${changeId}`) : null,
    pipelineName: name(env.JOB_NAME),
    // Parallel stages of one build share BUILD_TAG, so this is never unique on its own.
    // BUILD_TAG is `jenkins-${JOB_NAME}-${BUILD_NUMBER}`.
    jobId: joinParts(text(env.BUILD_TAG) ?? joinParts('jenkins', env.JOB_NAME, env.BUILD_NUMBER), env.STAGE_NAME),
    jobIdUnique: false,
    // The build's page (BUILD_URL is set when Jenkins knows its own URL); RUN_DISPLAY_URL is the Blue Ocean view.
    jobUrl: jobUrlOrNull(env.BUILD_URL) ?? jobUrlOrNull(env.RUN_DISPLAY_URL),
  };
}

/** `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID[/attempts/N]`. */
function githubRunUrl(env: Env): string | null {
  const server = text(env.GITHUB_SERVER_URL);
  const repository = text(env.GITHUB_REPOSITORY);
  const runId = text(env.GITHUB_RUN_ID);
  if (server === null || repository === null || runId === null || !/^\d+$/.test(runId) || !/^[\w.-]+\/[\w.-]+$/.test(repository)) return null;
  const attempt = text(env.GITHUB_RUN_ATTEMPT);
  const attemptPart = attempt !== null && /^\d+$/.test(attempt) ? `/attempts/${attempt}` : '';
  return jobUrlOrNull(`${server.replace(/\/+$/, '')}/${repository}/actions/runs/${runId}${attemptPart}`);
}

// ---- value hygiene: everything returned must be acceptable in a hello ----------

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

function text(value: string | undefined): string | null {
  return present(value) ? value.trim() : null;
}

function stripPrefix(value: string | undefined, prefix: string): string | undefined {
  return value?.startsWith(prefix) ? value.slice(prefix.length) : value;
}

function printable(value: string | null | undefined, maxLength: number): string | null {
  if (value === null || value === undefined) return null;
  const trimmed = value.trim();
  // eslint-disable-next-line no-control-regex
  if (trimmed === '' || trimmed.length > maxLength || /[\u0000-\u001f\u007f]/.test(trimmed)) return null;
  return trimmed;
}

function ref(value: string | null | undefined): string | null {
  return printable(value, limits.maxRefLength);
}

function name(value: string | null | undefined): string | null {
  return printable(value, limits.maxNameLength);
}

function sha(value: string | undefined): string | null {
  const lower = value?.trim().toLowerCase();
  return lower !== undefined && /^[0-9a-f]{7,64}$/.test(lower) ? lower : null;
}

/** A repository URL without credentials (`https://user:token@host/x` -> `https://host/x`). */
export function repoUrl(value: string | null | undefined): string | null {
  const clean = printable(value, limits.maxRepoLength);
  if (clean === null) return null;
  return clean.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

function joinParts(...parts: (string | null | undefined)[]): string {
  return parts.filter((p): p is string => present(p ?? undefined)).map((p) => p.trim()).join('-');
}
