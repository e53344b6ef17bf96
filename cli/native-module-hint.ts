import { dirname } from 'node:path';

/**
 * better-sqlite3 is a native module that its install script compiles. A peer-only install skips
 * install scripts (`npm install -g --ignore-scripts ./taskshard-*.tgz`, see the README): the peer
 * never loads the module, but the SQLite store does, and the loader's own error is a list of the
 * thirteen paths it tried. This turns that error into the cause and the fix, naming the directory.
 * Any other error is returned as its message.
 */
export function describeStoreError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (!message.startsWith('Could not locate the bindings file') || !message.includes('better_sqlite3.node')) return message;
  const moduleDir = message.match(/(\/\S*\/node_modules\/better-sqlite3)\//)?.[1];
  const packageDir = moduleDir === undefined ? null : dirname(dirname(moduleDir));
  const rebuild = packageDir === null ? 'npm rebuild better-sqlite3 in the installed package' : `cd ${packageDir} && npm rebuild better-sqlite3`;
  return [
    `the SQLite store needs better-sqlite3's native module, and it was never built${moduleDir === undefined ? '' : ` (${moduleDir} has no build/Release/better_sqlite3.node)`}:`,
    'this install skipped install scripts (npm install --ignore-scripts, the peer-only install; the peer never needs the module).',
    `To run the authority from it, build the module: ${rebuild} (needs python3, make and g++; about two minutes),`,
    'or install without --ignore-scripts, or use --db postgres://... (no native module)',
  ].join(' ');
}
