import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set by the bundler in peer.mjs (scripts/build-peer-bundle.mjs); absent when running from dist/ or source. */
declare const TASKSHARD_BUNDLED_VERSION: string | undefined;

let cached: string | null = null;

/** taskshard's version: baked into peer.mjs, else from its package.json (found walking up from this file), sent in hello. */
export function clientVersion(): string {
  if (cached !== null) return cached;
  if (typeof TASKSHARD_BUNDLED_VERSION === 'string') return (cached = TASKSHARD_BUNDLED_VERSION);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'taskshard' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // not here; keep walking up
    }
    dir = dirname(dir);
  }
  return (cached = '0.0.0');
}
