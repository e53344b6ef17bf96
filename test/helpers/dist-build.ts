import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

/**
 * dist/ for the tests: e2e tests run the real built CLI, dashboard and peer bundle (dist/peer.mjs),
 * so it is built before any test runs and never stale. The build is skipped only when dist/ was
 * built here from exactly the same inputs: a sha256 of every file the build reads, stored in
 * `stampFile` after a successful build. `npm test` (scripts/run-tests.ts) builds once, then starts
 * both vitest runs, whose global setups find the stamp current.
 */
const stampFile = join(repoRoot, 'dist', '.test-build-inputs');

/** What `tsconfig.build.json`, `scripts/build-web.mjs` and `scripts/build-peer-bundle.mjs` read. */
const inputDirs = ['cli', 'server', 'peer', 'shared', 'bench', 'web'];
const inputFiles = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.web.json', 'scripts/build-web.mjs', 'scripts/build-peer-bundle.mjs'];
const outputs = ['dist/cli/main.js', 'dist/peer.mjs', 'dist/web/index.html'];

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(repoRoot, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** sha256 over the path and content of every build input, in a fixed order. */
export function buildInputsDigest(): string {
  const hash = createHash('sha256');
  const present = (p: string): boolean => existsSync(join(repoRoot, p));
  const files = [...inputDirs.filter(present).flatMap(filesUnder), ...inputFiles.filter(present)].sort();
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(repoRoot, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Builds dist/ (as `npm run build` does) unless it was built from the current inputs; says which. */
export function ensureDistBuilt(): 'built' | 'current' {
  const digest = buildInputsDigest();
  const current = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === digest && outputs.every((f) => existsSync(join(repoRoot, f)));
  if (current) return 'current';
  rmSync(stampFile, { force: true });
  const node = (args: string[]): void => void execFileSync(process.execPath, args, { cwd: repoRoot, stdio: 'inherit' });
  node([join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  // The dashboard (dist/web) is served by the authority the tests start.
  node([join(repoRoot, 'scripts/build-web.mjs')]);
  node([join(repoRoot, 'scripts/build-peer-bundle.mjs')]);
  // The digest taken before the build: an input edited during it makes the next run build again.
  writeFileSync(stampFile, digest);
  return 'built';
}
