import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's own package.json, found by walking up from this file (works from dist/ and from source). */
export function packageInfo(): { name: string; version: string; root: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'taskshard' && pkg.version) return { name: pkg.name, version: pkg.version, root: dir };
    } catch {
      // not here; keep walking up
    }
    dir = dirname(dir);
  }
  return { name: 'taskshard', version: '0.0.0', root: process.cwd() };
}
