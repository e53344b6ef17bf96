import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import { countBy, endPeerWorkspace, newPeerWorkspace, Proc, readStepLog, startAuthority, writeStepScript, type PeerWorkspace } from '../helpers/peer-e2e.js';
import { postgresBinDir, startPostgresCluster } from '../helpers/postgres-cluster.js';
import { ciShellBlocks } from '../helpers/readme-blocks.js';
import { toolsRequired } from '../helpers/tools.js';

/**
 * The README's "Installing the package instead", run as written: `npm pack --ignore-scripts` in a
 * checkout (package.json, README and the built dist/ and schemas/ of this repository), then, in a
 * user repository with the tarball, a global install into a temporary prefix (`npm_config_prefix`,
 * the only change) with only Node.js's own directory and the system's on PATH, `taskshard
 * --version`, `peer --check` and a real peer run against a real authority on 127.0.0.1. The install
 * skipped install scripts: better-sqlite3 was not compiled, the peer did not need it, and
 * `taskshard server` on that install says what is missing and how to build it, and runs on
 * PostgreSQL (a real cluster), which needs no native module.
 *
 * The install needs the npm registry (the server's JavaScript dependencies). Without one it skips
 * with the reason locally; in CI (TASKSHARD_REQUIRE_TOOLS=1) it fails instead.
 */

const pgBin = postgresBinDir();
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const token = 'pack-token-0123456789';

let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-npm-pack-', 3);
});
afterEach(() => endPeerWorkspace(ws));

interface ShResult {
  readonly code: number | null;
  readonly out: string;
  readonly stderr: string;
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<ShResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, out, stderr }));
  });
}

/** The test runner's environment without CI detection, taskshard variables or npm's lifecycle variables (from `npm test`). */
function cleanEnv(): NodeJS.ProcessEnv {
  const ciVars = /^(CI|GITHUB_.*|GITLAB_CI|CI_.*|JENKINS_URL|BUILDKITE.*|CIRCLECI|CIRCLE_.*|TASKSHARD_.*|npm_.*|NODE_OPTIONS)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !ciVars.test(k)));
}

const networkFailure = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network)\b/;

describe("README: installing the package from 'npm pack' (peer only, no native build)", () => {
  it('npm pack, npm install -g --ignore-scripts, taskshard --version, peer --check, peer; server explains the missing native module', async (ctx) => {
    const install = ciShellBlocks().packageInstall;
    expect(install).toEqual([
      'npm pack --ignore-scripts    # in a checkout of taskshard, after npm ci: writes taskshard-0.1.0.tgz',
      `npm install -g --ignore-scripts --no-audit --no-fund ./taskshard-${version}.tgz`,
      'taskshard --version',
      'taskshard peer --check -- ci/build.sh {step} {target}',
      'taskshard peer -- ci/build.sh {step} {target}',
    ]);
    const [pack, globalInstall, ...run] = install;

    // A checkout of taskshard after `npm ci` (which built dist/): what `npm pack` reads.
    const checkout = ws.dir.file('checkout');
    mkdirSync(checkout);
    for (const entry of ['package.json', 'README.md', 'dist', 'schemas']) cpSync(join(repoRoot, entry), join(checkout, entry), { recursive: true });
    const packed = await sh(pack!, checkout, cleanEnv());
    expect(packed.code, packed.out).toBe(0);
    const tarball = join(checkout, `taskshard-${version}.tgz`);
    expect(existsSync(tarball), packed.out).toBe(true);

    // The CI job: a user repository with the tarball (an artifact), Node.js and the system on PATH.
    const repo = ws.dir.file('repo');
    mkdirSync(join(repo, 'ci'), { recursive: true });
    copyFileSync(ws.schema, join(repo, 'ci', 'taskshard.json'));
    writeStepScript(join(repo, 'ci', 'build.sh'), ws.log);
    chmodSync(join(repo, 'ci', 'build.sh'), 0o755);
    copyFileSync(tarball, join(repo, `taskshard-${version}.tgz`));
    const prefix = ws.dir.file('prefix');
    const auth = await startAuthority({ db: ws.dir.file('a.db'), env: { TASKSHARD_TOKEN: token } });
    const env: NodeJS.ProcessEnv = {
      ...cleanEnv(),
      PATH: [join(prefix, 'bin'), dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
      npm_config_prefix: prefix,
      npm_config_update_notifier: 'false',
      TASKSHARD_SERVER: auth.httpUrl,
      TASKSHARD_TOKEN: token,
      TASKSHARD_SCHEMA: 'ci/taskshard.json',
      TASKSHARD_CACHE_ID: 'bazel-remote-prod',
      TASKSHARD_REPO: 'https://example.com/acme/mono',
      TASKSHARD_BASE_REF: 'main',
      TASKSHARD_PEER_ID: 'packed',
      PEER_NAME: 'packed',
    };

    const installed = await sh(globalInstall!, repo, env);
    if (installed.code !== 0 && networkFailure.test(installed.out) && !toolsRequired) {
      console.warn(`skipping: npm install could not reach the npm registry:\n${installed.out}`);
      ctx.skip();
    }
    expect(installed.code, installed.out).toBe(0);
    expect((await sh('command -v taskshard', repo, env)).out.trim()).toBe(join(prefix, 'bin', 'taskshard'));
    // Install scripts were skipped: better-sqlite3's native module was never compiled.
    const packageDir = join(prefix, 'lib', 'node_modules', 'taskshard');
    expect(existsSync(join(packageDir, 'node_modules', 'better-sqlite3', 'package.json'))).toBe(true);
    expect(existsSync(join(packageDir, 'node_modules', 'better-sqlite3', 'build'))).toBe(false);

    const outputs: string[] = [];
    for (const command of run) {
      const r = await sh(command, repo, env);
      outputs.push(r.out);
      expect(r.code, `$ ${command}\n${r.out}`).toBe(0);
    }
    const [versionOut, checkOut, peerOut] = outputs;
    expect(versionOut).toBe(`${version}\n`);
    expect(checkOut).toMatch(/taskshard: check passed: exit 0/);
    expect(peerOut).toMatch(/taskshard: joined cohort c_\S+ as peer packed/);
    expect(peerOut).toMatch(/taskshard: exit 0: every step resolved and the universe built\n/);
    expect(countBy(readStepLog(ws.log), 'done')).toEqual({ s1: 1, s2: 1, s3: 1 });
    expect(countBy(readStepLog(ws.log), 'done', 'universe')).toEqual({ universe: 1 });

    // The authority from this install: SQLite needs the module that was not built. One sentence, no loader dump.
    const server = await sh(`taskshard server --port 0 --db ${ws.dir.file('server.db')}`, repo, env);
    expect(server.code, server.out).toBe(1);
    expect(server.stderr).toBe(
      `taskshard server: cannot start: the SQLite store needs better-sqlite3's native module, and it was never built (${packageDir}/node_modules/better-sqlite3 has no build/Release/better_sqlite3.node): ` +
        'this install skipped install scripts (npm install --ignore-scripts, the peer-only install; the peer never needs the module). ' +
        `To run the authority from it, build the module: cd ${packageDir} && npm rebuild better-sqlite3 (needs python3, make and g++; about two minutes), ` +
        'or install without --ignore-scripts, or use --db postgres://... (no native module)\n',
    );
    // ... and on PostgreSQL the same install runs the authority.
    if (pgBin === null) return;
    const cluster = await startPostgresCluster(pgBin);
    try {
      const url = cluster.createDatabase('packed');
      const child = spawn(join(prefix, 'bin', 'taskshard'), ['server', '--port', '0', '--db', url, '--log-level', 'info'], { cwd: repo, env, stdio: ['pipe', 'pipe', 'pipe'] });
      const pgServer = new Proc('packed server on PostgreSQL', child);
      try {
        await pgServer.until('the authority on PostgreSQL to listen', () => /"msg":"taskshard authority listening"/.test(pgServer.stdout), 20_000);
      } finally {
        pgServer.kill('SIGTERM');
        expect(await pgServer.exit(15_000), pgServer.stdout + pgServer.stderr).toBe(0);
      }
      expect(pgServer.stderr).toBe('');
    } finally {
      cluster.stop();
    }
  }, 120_000);
});
