import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

/**
 * server/sim is product code that must stay pure like the core it drives: no
 * I/O, no wall clock, no timers, no unseeded randomness. (The eslint rule for
 * server/core does not cover this directory; this test does.)
 */
const dir = join(repoRoot, 'server/sim');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

describe('server/sim purity', () => {
  it.each(files)('%s imports nothing that does I/O', (file) => {
    const source = readFileSync(join(dir, file), 'utf8');
    const specifiers = [...source.matchAll(/^import\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);
    for (const spec of specifiers) {
      expect(spec, `${file} imports ${spec}`).toMatch(/^(\.\.?\/|zod$)/);
      expect(spec, `${file} imports ${spec}`).not.toMatch(/\/(store|http)\/|\/cli\/|\/bench\//);
    }
  });

  it.each(files)('%s reads no clock, timer or unseeded randomness', (file) => {
    const source = readFileSync(join(dir, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    expect(source).not.toMatch(/\bDate\b|\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bperformance\b|Math\.random|\bprocess\./);
  });
});
