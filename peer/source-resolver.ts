import type { CiEnvironment } from './ci-environment.js';
import { repoUrl } from './ci-environment.js';
import type { GitFacts } from './git-facts.js';
import { normalizeRepo } from '../shared/repo-url.js';
import { toPeerId, withSuffix } from './peer-id.js';

/**
 * Who this peer is and which source state it builds: explicit options first,
 * then the CI environment, then git.
 *
 * The change (base sha, change ref, patchsets) is taken as a whole: when the
 * user passes any of `--base-sha`, `--change-ref` or `--patchset`, the sha and
 * change ref are exactly what was passed and nothing is guessed for them (a
 * detected HEAD sha would differ per job in a speculative-merge CI and stop
 * peers from sharing). `--base-ref` alone only names the branch: the detected
 * sha is kept, so a later push never joins an earlier run's cohort. The
 * repository is normalized (`normalizeRepo`) so every spelling of it matches;
 * it and the peer id are detected independently.
 */
export interface SourceInput {
  readonly peerId?: string | undefined;
  readonly repo?: string | undefined;
  readonly baseRef?: string | undefined;
  readonly baseSha?: string | undefined;
  readonly changeRef?: string | undefined;
  readonly patchsets: readonly string[];
  readonly pipeline?: string | undefined;
}

export interface ResolvedSource {
  readonly peerId: string;
  readonly repo: string;
  readonly baseRef: string;
  readonly baseSha: string | null;
  readonly changeRef: string | null;
  /** The `--patchset` list when given, else the change ref alone, else empty. */
  readonly patchsets: readonly string[];
  readonly pipelineName: string;
  /** Where detected values came from, for the start-up line. */
  readonly detectedFrom: 'ci' | 'git' | 'options' | 'mixed';
  readonly ci: CiEnvironment | null;
}

export interface SourceFacts {
  readonly ci: CiEnvironment | null;
  /** Asked only when something is still missing after options and CI. */
  readonly git: () => GitFacts;
  /** For the default peer id outside CI. */
  readonly hostName: string;
  readonly processId: number;
  /** A short random string, e.g. 6 hex digits. */
  readonly randomSuffix: () => string;
}

export type SourceResolution =
  | { readonly ok: true; readonly source: ResolvedSource }
  | { readonly ok: false; readonly problems: readonly { readonly option: 'repo' | 'baseRef'; readonly message: string }[] };

export function resolveSource(input: SourceInput, facts: SourceFacts): SourceResolution {
  const { ci } = facts;
  let gitFacts: GitFacts | null = null;
  const git = (): GitFacts => (gitFacts ??= facts.git());
  const used = new Set<'ci' | 'git' | 'options'>();
  const pick = (explicit: string | undefined, fromCi: string | null | undefined, fromGit: () => string | null): string | null => {
    if (explicit !== undefined) {
      used.add('options');
      return explicit;
    }
    if (fromCi) {
      used.add('ci');
      return fromCi;
    }
    const g = fromGit();
    if (g) used.add('git');
    return g;
  };

  const userSource = input.baseSha !== undefined || input.changeRef !== undefined || input.patchsets.length > 0;
  const repo = pick(input.repo, ci?.repo, () => repoUrl(git().remoteUrl));
  const baseRef = pick(input.baseRef, ci?.baseRef, () => git().branch);
  const baseSha = userSource ? (input.baseSha ?? null) : pick(undefined, ci?.baseSha, () => git().headSha);
  const changeRef = userSource ? (input.changeRef ?? null) : (ci?.changeRef ?? null);

  const problems: { option: 'repo' | 'baseRef'; message: string }[] = [];
  const where = ci ? `the ${ci.provider} environment` : 'the environment (no CI system recognized)';
  if (repo === null) problems.push({ option: 'repo', message: `not given, and neither ${where} nor git (remote.origin.url) names it; pass the repository URL` });
  if (baseRef === null) problems.push({ option: 'baseRef', message: `not given, and neither ${where} nor git (current branch) names it; pass the branch the change is based on` });
  if (repo === null || baseRef === null) return { ok: false, problems };

  let peerId: string;
  if (input.peerId !== undefined) peerId = input.peerId;
  else if (ci) peerId = ci.jobIdUnique ? toPeerId(ci.jobId) : withSuffix(ci.jobId, facts.randomSuffix());
  else peerId = withSuffix(`${facts.hostName}-${facts.processId}`, facts.randomSuffix());

  return {
    ok: true,
    source: {
      peerId,
      repo: normalizeRepo(repo),
      baseRef,
      baseSha,
      changeRef,
      patchsets: input.patchsets.length > 0 ? [...input.patchsets] : changeRef !== null ? [changeRef] : [],
      pipelineName: input.pipeline ?? ci?.pipelineName ?? 'default',
      detectedFrom: used.size === 1 ? [...used][0]! : used.size === 0 ? 'options' : 'mixed',
      ci,
    },
  };
}
