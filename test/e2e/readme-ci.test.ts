import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countBy, endPeerWorkspace, newPeerWorkspace, readStepLog, startAuthority, writeStepScript, type PeerWorkspace } from '../helpers/peer-e2e.js';
import { blockLanguages, ciJob, ciShellBlocks, codeBlocks, readmeSection, shellCommands } from '../helpers/readme-blocks.js';
import { requireTool } from '../helpers/tools.js';

/**
 * The README's "Running peers in CI" section, executed: every command in its
 * shell blocks and every `run:`/`script:` line of its GitHub Actions and GitLab
 * CI examples runs here through /bin/sh, with the variables those examples set
 * (the server pointing at a real authority on loopback), in a fresh "user
 * repository" per job. Only ci/build.sh is ours here (it logs instead of calling Bazel);
 * the README's own ci/build.sh and `.bazelrc` lines run with real Bazel in
 * real-readme-build-script.test.ts, and the `npm pack` install in npm-pack-install.test.ts.
 * Also: the `$schema` example of "Schema files" works from a user's repository.
 */

const curl = requireTool('curl');
const token = 'readme-token-0123456789';

let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-readme-ci-', 4);
});
afterEach(() => endPeerWorkspace(ws));

/** A checked-out user repository: ci/taskshard.json and a ci/build.sh that logs each call. */
function userRepo(name: string): string {
  const dir = ws.dir.file(name);
  mkdirSync(join(dir, 'ci'), { recursive: true });
  cpSync(ws.schema, join(dir, 'ci', 'taskshard.json'));
  writeStepScript(join(dir, 'ci', 'build.sh'), ws.log);
  chmodSync(join(dir, 'ci', 'build.sh'), 0o755);
  return dir;
}

function sh(command: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env: { PATH: `${process.env.PATH}`, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function runJob(name: string, commands: string[], env: Record<string, string>): Promise<string> {
  const dir = userRepo(name);
  let log = '';
  for (const command of commands) {
    const r = await sh(command, dir, env);
    log += `$ ${command}\n${r.out}`;
    expect(r.code, log).toBe(0);
  }
  return log;
}

describe("README: every block of 'Running peers in CI' is run by a test", () => {
  it('shell commands (here), ci/build.sh and .bazelrc (real Bazel), the npm pack install, two CI files (here): nothing else', () => {
    const ci = readmeSection('Running peers in CI');
    const languages = blockLanguages(ci);
    // A new kind of block needs a test that runs it before it can appear here.
    expect([...new Set(languages)].sort()).toEqual(['bazelrc', 'sh', 'yaml']);
    expect(languages.filter((l) => l === 'yaml')).toHaveLength(2);
    expect(codeBlocks(ci, 'bazelrc')).toHaveLength(1);
    const shell = ciShellBlocks(ci);
    expect(Object.keys(shell.scripts)).toEqual(['ci/build.sh']);
    expect(shell.packageInstall[0]).toMatch(/^npm pack --ignore-scripts\b/);
    expect(shell.peerCommands.length).toBeGreaterThan(0);
  });
});

describe.skipIf(curl === null)("README: every command of 'Running peers in CI' works", () => {
  const ci = readmeSection('Running peers in CI');
  const [githubYaml, gitlabYaml] = codeBlocks(ci, 'yaml');

  it('the GitHub Actions matrix: three jobs share the steps, each built once', async () => {
    const auth = await startAuthority({ db: ws.dir.file('gh.db'), env: { TASKSHARD_TOKEN: token } });
    const job = ciJob(githubYaml!);
    expect(job.commands).toEqual(['curl -fsSL "$TASKSHARD_SERVER/peer.mjs" -o peer.mjs', 'node peer.mjs peer -- ci/build.sh {step} {target}']);
    const summary = ws.dir.file('summary.md');
    const env = (shard: number): Record<string, string> => ({
      ...job.env,
      TASKSHARD_SERVER: auth.httpUrl,
      TASKSHARD_TOKEN: token,
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'acme/mono',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REF_NAME: 'main',
      GITHUB_SHA: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      GITHUB_WORKFLOW: 'ci',
      GITHUB_RUN_ID: '5001',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'build',
      GITHUB_STEP_SUMMARY: summary,
      PEER_NAME: `gh${shard}`,
    });
    const logs = await Promise.all([1, 2, 3].map((shard) => runJob(`gh${shard}`, job.commands, env(shard))));
    for (const log of logs) expect(log).toMatch(/taskshard: exit 0: every step resolved and the universe built\n/);
    expect(countBy(readStepLog(ws.log), 'done')).toEqual({ s1: 1, s2: 1, s3: 1, s4: 1 });
    const report = JSON.parse(readFileSync(ws.dir.file('gh1/taskshard-report.json'), 'utf8'));
    expect(report).toMatchObject({ mode: 'shared', exitCode: 0, source: { repo: 'github.com/acme/mono' } });
  });

  it('the GitLab CI parallel jobs share the steps, each built once', async () => {
    const auth = await startAuthority({ db: ws.dir.file('gl.db'), env: { TASKSHARD_TOKEN: token } });
    const job = ciJob(gitlabYaml!);
    expect(job.commands).toEqual(['curl -fsSL "$TASKSHARD_SERVER/peer.mjs" -o peer.mjs', 'node peer.mjs peer -- ci/build.sh {step} {target}']);
    const env = (n: number): Record<string, string> => ({
      ...job.env,
      TASKSHARD_SERVER: auth.httpUrl,
      TASKSHARD_TOKEN: token,
      GITLAB_CI: 'true',
      CI_PROJECT_URL: 'https://gitlab.example.com/acme/mono',
      CI_COMMIT_BRANCH: 'main',
      CI_COMMIT_SHA: 'b1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      CI_JOB_ID: String(700 + n),
      PEER_NAME: `gl${n}`,
    });
    const logs = await Promise.all([1, 2, 3].map((n) => runJob(`gl${n}`, job.commands, env(n))));
    for (const log of logs) expect(log).toMatch(/section_start:\d+:taskshard_1\[collapsed=true\]/);
    expect(countBy(readStepLog(ws.log), 'done')).toEqual({ s1: 1, s2: 1, s3: 1, s4: 1 });
  });

  it('the shell commands (fetch, --check, run, gate queue) with the variables of the examples', async () => {
    const auth = await startAuthority({ db: ws.dir.file('sh.db'), env: { TASKSHARD_TOKEN: token } });
    const commands = ciShellBlocks(ci).peerCommands;
    expect(commands).toEqual([
      'curl -fsSL "$TASKSHARD_SERVER/peer.mjs" -o peer.mjs',
      'node peer.mjs peer --check -- ci/build.sh {step} {target}',
      'node peer.mjs peer -- ci/build.sh {step} {target}',
      'node peer.mjs peer --pipeline gate --pipeline-type dependent --base-ref main --patchset refs/changes/41/1241/3 --patchset refs/changes/42/1242/1 -- ci/build.sh {step} {target}',
    ]);
    const env = { ...ciJob(githubYaml!).env, TASKSHARD_SERVER: auth.httpUrl, TASKSHARD_TOKEN: token, TASKSHARD_REPO: 'https://example.com/acme/mono', TASKSHARD_BASE_REF: 'main', PEER_NAME: 'sh' };
    const log = await runJob('sh', commands, env);
    expect(log).toMatch(/taskshard: check passed: exit 0/);
    expect(log.match(/taskshard: exit 0: every step resolved and the universe built/g)).toHaveLength(2);
    // "All flags, their variables and defaults: `node peer.mjs peer --help`", in the same job directory.
    expect(readmeSection('Running peers in CI')).toContain('`node peer.mjs peer --help`');
    const help = await sh('node peer.mjs peer --help', ws.dir.file('sh'), env);
    expect(help.code, help.out).toBe(0);
    // Every variable of the README's table, with its flag, is the help's.
    const table = [...readmeSection('Running peers in CI').matchAll(/^\| `(TASKSHARD_[A-Z_]+)` \(`(--[a-z-]+)`\) \|/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(table.length).toBeGreaterThanOrEqual(8);
    const helpText = help.out.replace(/\s+/g, ' ');
    for (const [variable, flag] of table) expect(helpText, variable).toMatch(new RegExp(`${flag} [^]*?env: ${variable}\\)`));
    expect(help.out.replace(/\s+/g, ' ')).toContain('(default: 60, env: TASKSHARD_PROGRESS_INTERVAL)');
  });
});

describe("README: the $schema example works from a user's repository", () => {
  it('json-schema > FILE writes the editor schema where $schema points; the example validates', async () => {
    const auth = await startAuthority({ db: ws.dir.file('s.db') });
    const dir = userRepo('user');
    const schemaSection = readmeSection('Schema files');
    const [writeCommand] = shellCommands(codeBlocks(schemaSection, 'sh'));
    expect(writeCommand).toMatch(/^node peer\.mjs schema json-schema > ci\/taskshard\.schema\.json/);
    const example = codeBlocks(schemaSection, 'json').find((b) => b.includes('"$schema"'))!;
    writeFileSync(join(dir, 'ci', 'taskshard.json'), example);
    const env = { PATH: `${process.env.PATH}` };
    expect((await sh(`curl -fsSL ${auth.httpUrl}/peer.mjs -o peer.mjs`, dir, env)).code).toBe(0);
    expect((await sh(writeCommand!.replace(/\s+#.*$/, ''), dir, env)).code).toBe(0);
    const $schema = JSON.parse(example).$schema as string;
    const editorSchema = JSON.parse(readFileSync(join(dir, 'ci', $schema), 'utf8'));
    expect(editorSchema.$schema).toMatch(/^https:\/\/json-schema\.org\//);
    expect(Object.keys(editorSchema.properties)).toEqual(expect.arrayContaining(['$schema', 'id', 'universe', 'steps']));
    const validate = await sh('node peer.mjs schema validate ci/taskshard.json ci/taskshard.schema.json && cat ci/taskshard.json | node peer.mjs schema validate -', dir, env);
    expect(validate.code, validate.out).toBe(0);
    expect(validate.out).toMatch(/^ok ci\/taskshard\.json: schema "my-universe", 4 steps, sha256:/m);
    expect(validate.out).toMatch(/^skip ci\/taskshard\.schema\.json: a JSON Schema document/m);
    expect(validate.out).toMatch(/^ok <stdin>: schema "my-universe", 4 steps/m);
  });
});
