import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/**
 * Before the peer says hello, COMMAND must be something it can start: a path
 * (containing `/`) to an executable file, or a name found on PATH as one. A
 * broken COMMAND found only on the first lease would fail a shared step for
 * every healthy peer of the cohort; found here, it is exit 2 naming it.
 */
export type Preflight = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly problem: string };

export function preflightCommand(command: string, pathVariable: string, cwd: string): Preflight {
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolve(cwd, command);
    const why = notExecutable(full);
    return why === null ? { ok: true, path: full } : { ok: false, problem: `${command}: ${why}` };
  }
  const dirs = pathVariable.split(delimiter).filter((d) => d !== '');
  let found: string | null = null;
  for (const dir of dirs) {
    const candidate = join(isAbsolute(dir) ? dir : resolve(cwd, dir), command);
    const why = notExecutable(candidate);
    if (why === null) return { ok: true, path: candidate };
    if (why !== 'no such file') found ??= `${candidate}: ${why}`;
  }
  if (found !== null) return { ok: false, problem: `${command}: found ${found}` };
  return { ok: false, problem: `${command}: not found on PATH (${dirs.length === 0 ? 'PATH is empty' : `searched ${dirs.length} directories`}); give a path such as ./ci/build.sh, or install it` };
}

/** Why `path` cannot be executed, or null when it can. */
function notExecutable(path: string): string | null {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file' : `cannot be read (${code ?? 'error'})`;
  }
  if (!isFile) return 'is a directory, not an executable file';
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return 'is not executable (chmod +x it, or run it through its interpreter, e.g. -- sh ci/build.sh)';
  }
  return null;
}
