import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bazelExample, repoRoot } from '../../scripts/real-build/real-examples.js';
import { runToEnd, startProcess, stopAll, type RunningProcess } from '../../scripts/real-build/child-processes.js';
import { endPeerWorkspace, newPeerWorkspace, startAuthority, withoutCiEnv, type PeerWorkspace } from '../helpers/peer-e2e.js';
import { ciJob, ciShellBlocks, codeBlocks, readmeSection } from '../helpers/readme-blocks.js';
import { requireTool } from '../helpers/tools.js';

/**
 * The README's own `ci/build.sh` and `.bazelrc` lines ("Running peers in CI"), run for real: two
 * CI jobs, each a checkout of a small Bazel workspace (examples/bazel's WORKSPACE and offline
 * placeholders, three genrules, one sh_test) with the README's script as ci/build.sh and the
 * README's `build:ci` lines in its .bazelrc (the cache URL pointing at nginx's WebDAV cache on
 * 127.0.0.1), run the GitHub Actions example's commands against a real authority. Each genrule
 * appends to one log outside the workspaces, so the test counts every execution in every job:
 * each ran once, and each universe (`bazel test --config=ci //...`) took the rest from the
 * remote cache. Every Bazel server is shut down and every process stopped by pid.
 */
const bazel = requireTool('bazel');
const nginx = requireTool('nginx', ['nginx', '/usr/sbin/nginx']);
const curl = requireTool('curl');

const stepIds = ['a', 'b', 'c'];

let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-readme-bazel-', 1);
});
afterEach(() => endPeerWorkspace(ws));

/** The README's `build:ci` lines, with its example cache URL replaced by the test's cache. */
function readmeBazelrc(cacheUrl: string): string {
  const [block] = codeBlocks(readmeSection('Running peers in CI'), 'bazelrc');
  expect(block).toMatch(/^build:ci --remote_cache=https:\/\/bazel-cache\.internal\.example\.com$/m);
  return block!.replace('https://bazel-cache.internal.example.com', cacheUrl);
}

/** A checkout of the user's repository for one job: the workspace, the schema, the README's ci/build.sh. */
function checkout(dir: string, outputBase: string, cacheUrl: string, actionsLog: string): void {
  const example = join(repoRoot, 'examples/bazel');
  mkdirSync(join(dir, 'ci'), { recursive: true });
  cpSync(join(example, 'WORKSPACE'), join(dir, 'WORKSPACE'));
  cpSync(join(example, 'third_party'), join(dir, 'third_party'), { recursive: true });
  const placeholders = 'third_party/rules_cc,third_party/rules_cc/cc,third_party/rules_java,third_party/rules_java/java,third_party/remote_coverage_tools';
  writeFileSync(
    join(dir, '.bazelrc'),
    [
      // This machine's lines (a CI machine has its own output base anyway); then the README's.
      `startup --output_base=${outputBase}`,
      'startup --max_idle_secs=300',
      'build --spawn_strategy=local',
      'build --disk_cache=',
      `build --deleted_packages=${placeholders}`,
      `query --deleted_packages=${placeholders}`,
      readmeBazelrc(cacheUrl),
    ].join('\n'),
  );
  mkdirSync(join(dir, 'lib'));
  writeFileSync(
    join(dir, 'lib/BUILD.bazel'),
    `[genrule(
    name = n,
    outs = [n + ".txt"],
    cmd = "echo %s >> ${actionsLog}; sleep 1; echo %s > $@" % (n, n),
    visibility = ["//visibility:public"],
) for n in ${JSON.stringify(stepIds)}]
`,
  );
  mkdirSync(join(dir, 'check'));
  writeFileSync(
    join(dir, 'check/BUILD.bazel'),
    `sh_test(
    name = "universe_test",
    size = "small",
    srcs = ["universe_test.sh"],
    data = [${stepIds.map((id) => `"//lib:${id}"`).join(', ')}],
)
`,
  );
  writeFileSync(join(dir, 'check/universe_test.sh'), `#!/bin/sh\nset -eu\n[ "$(cat ${stepIds.map((id) => `lib/${id}.txt`).join(' ')} | tr -d '\\n')" = ${stepIds.join('')} ]\n`);
  chmodSync(join(dir, 'check/universe_test.sh'), 0o755);
  writeFileSync(join(dir, 'ci/taskshard.json'), JSON.stringify({ id: 'readme-bazel', universe: '//...', steps: stepIds.map((id) => ({ id, target: `//lib:${id}`, estimateSec: 2 })) }, null, 2));
  const script = ciShellBlocks().scripts['ci/build.sh'];
  expect(script, 'the README has no ci/build.sh').toBeDefined();
  writeFileSync(join(dir, 'ci/build.sh'), script!);
  chmodSync(join(dir, 'ci/build.sh'), 0o755);
}

function bazelServerPid(outputBase: string): number | null {
  const file = join(outputBase, 'server/server.pid.txt');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(bazel === null || nginx === null || curl === null)("README: ci/build.sh and the .bazelrc lines of 'Running peers in CI', with Bazel", () => {
  it('two jobs run the GitHub Actions commands: each step built once, each universe (bazel test) takes the rest from the remote cache', async () => {
    const jobs = ['job-a', 'job-b'].map((id) => ({ id, repo: ws.dir.file(`${id}/repo`), outputBase: ws.dir.file(`${id}/output-base`) }));
    const actionsLog = ws.dir.file('actions.log');
    const serverPids: number[] = [];
    try {
      const cache = await bazelExample.startCache(ws.dir.path);
      for (const job of jobs) checkout(job.repo, job.outputBase, cache.url, actionsLog);
      const auth = await startAuthority({ db: ws.dir.file('a.db') });
      const github = ciJob(codeBlocks(readmeSection('Running peers in CI'), 'yaml')[0]!);
      expect(github.commands).toEqual(['curl -fsSL "$TASKSHARD_SERVER/peer.mjs" -o peer.mjs', 'node peer.mjs peer -- ci/build.sh {step} {target}']);
      const env = (id: string): NodeJS.ProcessEnv => ({
        ...withoutCiEnv(process.env),
        ...github.env,
        TASKSHARD_SERVER: auth.httpUrl,
        TASKSHARD_TOKEN: '',
        TASKSHARD_REPO: 'https://example.com/acme/mono',
        TASKSHARD_BASE_REF: 'main',
        TASKSHARD_BASE_SHA: 'c1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
        TASKSHARD_PEER_ID: id,
      });
      const runs: RunningProcess[] = jobs.map((job) => startProcess(job.id, '/bin/sh', ['-c', github.commands.join(' && ')], { cwd: job.repo, env: env(job.id) }));
      const codes = await Promise.all(runs.map((r) => r.exit(100_000)));
      const explain = runs.map((r) => `--- ${r.name}\n${r.output.slice(-3000)}`).join('\n');
      for (const job of jobs) {
        const pid = bazelServerPid(job.outputBase);
        if (pid !== null) serverPids.push(pid);
      }
      expect(codes, explain).toEqual([0, 0]);
      for (const r of runs) expect(r.output, explain).toMatch(/taskshard: exit 0: every step resolved and the universe built\n/);

      // Every genrule executed once across both jobs, steps and universes alike.
      expect(readFileSync(actionsLog, 'utf8').trim().split('\n').sort(), explain).toEqual(stepIds);
      // The jobs split the steps between them ...
      const builtBy = runs.map((r) => [...r.output.matchAll(/taskshard: step (\w+) finished/g)].map((m) => m[1]!));
      expect(builtBy.flat().sort(), explain).toEqual(stepIds);
      for (const built of builtBy) expect(built.length, explain).toBeGreaterThan(0);
      // ... and each universe was the README's `bazel test --config=ci`: it ran (or took from the cache) the test,
      // executing no genrule, with the other job's steps as remote cache hits.
      for (const r of runs) {
        const universe = r.output.slice(r.output.lastIndexOf('universe //... building'));
        expect(universe, explain).toMatch(/\/\/check:universe_test\s+(\(cached\) )?PASSED/);
        expect(universe, explain).toMatch(/INFO: \d+ process(es)?: [1-9]\d* remote cache hit/);
      }
    } finally {
      for (const job of jobs) {
        if (existsSync(join(job.outputBase, 'server'))) await runToEnd(`bazel shutdown (${job.id})`, 'bazel', ['shutdown'], { cwd: job.repo, timeoutMs: 60_000 });
      }
      await stopAll();
    }
    // No Bazel server outlives the test.
    expect(serverPids.filter(alive)).toEqual([]);
  }, 150_000);
});
