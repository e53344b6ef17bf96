import { execFileSync } from 'node:child_process';

/** What `git` says about the working tree, for peers outside a recognized CI system. */
export interface GitFacts {
  /** `remote.origin.url`, or null. */
  readonly remoteUrl: string | null;
  /** The checked-out branch, or null when HEAD is detached. */
  readonly branch: string | null;
  /** `HEAD`'s commit sha, or null. */
  readonly headSha: string | null;
}

/** Asks git in `cwd`; every question that fails (no git, not a repo, no remote) answers null. */
export function readGitFacts(cwd: string): GitFacts {
  const ask = (args: string[]): string | null => {
    try {
      const out = execFileSync('git', args, { cwd, encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      return out === '' ? null : out;
    } catch {
      return null;
    }
  };
  const branch = ask(['rev-parse', '--abbrev-ref', 'HEAD']);
  return {
    remoteUrl: ask(['config', '--get', 'remote.origin.url']),
    branch: branch === 'HEAD' ? null : branch,
    headSha: ask(['rev-parse', 'HEAD']),
  };
}
