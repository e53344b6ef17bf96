import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

/**
 * Tests that need an external tool (Chromium, PostgreSQL, Bazel, nginx, turbo) ask here.
 * Locally a missing tool skips the test with a reason; `.ci/run` sets
 * `TASKSHARD_REQUIRE_TOOLS=1`, so in CI a missing tool fails the run instead of skipping.
 */
export function toolPath(candidates: readonly string[]): string | null {
  for (const candidate of candidates) {
    if (candidate.includes('/')) {
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        continue;
      }
    }
    try {
      const found = execFileSync('sh', ['-c', `command -v ${candidate}`], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch {
      continue;
    }
  }
  return null;
}

/** Whether CI demands every tool (then a missing one is an error, not a skip). */
export const toolsRequired = process.env['TASKSHARD_REQUIRE_TOOLS'] === '1';

/**
 * Returns the path of the first candidate found, or `null` when none is and skipping is allowed
 * (use it with `describe.skipIf(path === null)`). Throws when `TASKSHARD_REQUIRE_TOOLS=1`.
 * `env` is for the test of this function.
 */
export function requireTool(name: string, candidates: readonly string[] = [name], env: NodeJS.ProcessEnv = process.env): string | null {
  const found = toolPath(candidates);
  if (found !== null) return found;
  const why = `${name} is not installed (looked for ${candidates.join(', ')}); install it with apt-get (see .ci/run)`;
  if (env['TASKSHARD_REQUIRE_TOOLS'] === '1') throw new Error(`${why}; TASKSHARD_REQUIRE_TOOLS=1 forbids skipping`);
  console.warn(`skipping: ${why}`);
  return null;
}
