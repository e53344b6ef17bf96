import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBazelExecLog, parseTurboRunSummary } from '../../peer/cache-evidence.js';
import { freePort, runToEnd, startProcess, waitForHttp, type RunningProcess } from './child-processes.js';

/**
 * The two real-build examples (examples/bazel, examples/turborepo) as the demo and the e2e tests
 * drive them: how to start the shared cache, how to lay out one job (its own copy of the workspace,
 * its own output base or local cache), and how to read each build invocation's evidence from the
 * tool's own records (Bazel's execution log, turbo's run summary).
 */

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

export const exampleNames = ['bazel', 'turbo'] as const;
export type ExampleName = (typeof exampleNames)[number];

/** One job's private directories: its workspace copy and where the tool's records go. */
export interface JobDirs {
  readonly id: string;
  readonly workspace: string;
  /** Execution logs / run summaries, one file per invocation (`<step>.json`, `universe.json`). */
  readonly evidenceDir: string;
  /** Bazel: the job's output base. */
  readonly stateDir: string;
}

/** What one build invocation (a step, or the universe) did, in the tool's own words. */
export interface Invocation {
  /** The step id, or `universe`. */
  readonly name: string;
  /** Slow actions (Bazel genrules) or tasks (turbo) that executed here, by step id. */
  readonly executed: readonly string[];
  /** ... that came from the remote cache. */
  readonly remoteHits: readonly string[];
  /** ... that came from this job's own local cache (turbo only). */
  readonly localHits: readonly string[];
  /** All actions or tasks: how many executed, how many were remote cache hits. */
  readonly totalExecuted: number;
  readonly totalRemoteHits: number;
}

export interface SharedCache {
  readonly url: string;
  readonly proc: RunningProcess;
  /** Where the cache keeps its files (nginx: `<prefix>/store`), when it is a directory. */
  readonly storeDir?: string;
}

export interface RealExample {
  readonly name: ExampleName;
  readonly sourceDir: string;
  readonly toolName: string;
  /** Null when ready; otherwise what to install. */
  missing(): string | null;
  /** Installs what the example itself can (turbo: `npm ci` in examples/turborepo); no-op when ready. */
  install(): void;
  startCache(dir: string): Promise<SharedCache>;
  /**
   * A second door to the same cache that reads everything but refuses to store action results,
   * as a job with a read-only credential for the action cache would see it (Bazel only; for
   * turbo, `TURBO_CACHE=local:rw,remote:r` does the same from the job's side).
   */
  startResultRefusingCache?(dir: string, main: SharedCache): Promise<SharedCache>;
  prepareWorkspace(job: JobDirs): void;
  /** Environment of a job (both with and without taskshard). */
  jobEnv(job: JobDirs, cache: SharedCache): NodeJS.ProcessEnv;
  /** Every invocation of a job, read from its evidence directory. */
  invocations(job: JobDirs): Invocation[];
  /** The tool's own summary line(s) of a job's last build, from the job's output. */
  summaryLine(output: string): string;
  /** Stops what the tool left running for a job (Bazel's server). */
  shutdown(job: JobDirs): Promise<void>;
}

function commandExists(name: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, name)));
}

function evidenceFiles(job: JobDirs): string[] {
  if (!existsSync(job.evidenceDir)) return [];
  return readdirSync(job.evidenceDir).filter((f) => f.endsWith('.json')).sort();
}

const bazelDir = join(repoRoot, 'examples/bazel');
/** The slow genrule of each step writes `<step>_gen.c`. */
const slowOutput = /\/([a-z]+)_gen\.c$/;

export const bazelExample: RealExample = {
  name: 'bazel',
  sourceDir: bazelDir,
  toolName: 'Bazel',
  missing() {
    const lacking = ['bazel', 'nginx'].filter((t) => !commandExists(t) && !existsSync(`/usr/sbin/${t}`));
    return lacking.length === 0 ? null : `${lacking.join(' and ')} not found: sudo apt-get install bazel-bootstrap nginx`;
  },
  install() {
    // Debian packages: the README's apt-get line; nothing to do from here.
  },
  async startCache(dir) {
    const port = await freePort();
    const proc = startProcess('nginx (Bazel HTTP cache)', join(bazelDir, 'cache/run-nginx.sh'), [String(port), join(dir, 'nginx')], {
      cwd: dir,
      env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin` },
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/ac/ready-check`, proc, 15_000);
    return { url, proc, storeDir: join(dir, 'nginx', 'store') };
  },
  async startResultRefusingCache(dir, main) {
    if (main.storeDir === undefined) throw new Error('the main cache has no store directory to share');
    const port = await freePort();
    const prefix = join(dir, 'nginx-ac-read-only');
    mkdirSync(join(prefix, 'tmp'), { recursive: true });
    // Same files as the main cache: blobs (/cas/) may be written, action results (/ac/) only read.
    writeFileSync(
      join(prefix, 'nginx.conf'),
      `user ${execFileSync('id', ['-un'], { encoding: 'utf8' }).trim()} ${execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim()};
daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${main.storeDir}/../tmp/body-ro;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${main.storeDir};
    client_max_body_size 0;
    location /ac/ { limit_except GET HEAD { deny all; } log_not_found off; }
    location / { dav_methods PUT; create_full_put_path on; dav_access user:rw group:r all:r; log_not_found off; }
  }
}
`,
    );
    const proc = startProcess('nginx (action results read-only)', 'nginx', ['-p', prefix, '-e', 'stderr', '-c', join(prefix, 'nginx.conf')], {
      cwd: dir,
      env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin` },
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/ac/ready-check`, proc, 15_000);
    return { url, proc };
  },
  prepareWorkspace(job) {
    cpSync(bazelDir, job.workspace, { recursive: true, filter: (src) => !/\/bazel-[^/]*$/.test(src) });
    mkdirSync(job.evidenceDir, { recursive: true });
    mkdirSync(job.stateDir, { recursive: true });
  },
  jobEnv(job, cache) {
    return { ...process.env, BAZEL_REMOTE_CACHE: cache.url, BAZEL_OUTPUT_BASE: join(job.stateDir, 'output-base'), BAZEL_EXEC_LOG_DIR: job.evidenceDir };
  },
  invocations(job) {
    return evidenceFiles(job).map((file) => {
      const path = join(job.evidenceDir, file);
      const spawns = parseBazelExecLog(readFileSync(path, 'utf8'), path);
      const slow = (hit: boolean): string[] =>
        spawns
          .filter((s) => s.mnemonic === 'Genrule' && s.remoteCacheHit === hit)
          .flatMap((s) => s.outputs.map((o) => o.path.match(slowOutput)?.[1]).filter((n): n is string => n !== undefined));
      return {
        name: file.replace(/\.json$/, ''),
        executed: slow(false),
        remoteHits: slow(true),
        localHits: [],
        totalExecuted: spawns.filter((s) => !s.remoteCacheHit).length,
        totalRemoteHits: spawns.filter((s) => s.remoteCacheHit).length,
      };
    });
  },
  summaryLine(output) {
    const lines = output.match(/^INFO: \d+ process(?:es)?.*$/gm);
    return lines?.at(-1) ?? '(no Bazel summary line in the output)';
  },
  async shutdown(job) {
    const outputBase = join(job.stateDir, 'output-base');
    if (!existsSync(outputBase) || !existsSync(job.workspace)) return;
    await runToEnd(`bazel shutdown (${job.id})`, 'bazel', [`--output_base=${outputBase}`, 'shutdown'], { cwd: job.workspace, timeoutMs: 60_000 });
  },
};

const turboDir = join(repoRoot, 'examples/turborepo');
export const turboToken = 'taskshard-example-token';
export const turboTeam = 'ci';

export const turboExample: RealExample = {
  name: 'turbo',
  sourceDir: turboDir,
  toolName: 'turbo',
  missing() {
    return existsSync(join(turboDir, 'node_modules/.bin/turbo')) && existsSync(join(turboDir, 'node_modules/turborepo-remote-cache'))
      ? null
      : `examples/turborepo has no node_modules: run (cd examples/turborepo && npm ci)`;
  },
  install() {
    if (this.missing() === null) return;
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: turboDir, stdio: ['ignore', 'inherit', 'inherit'], timeout: 150_000 });
    const still = this.missing();
    if (still !== null) throw new Error(`npm ci in ${turboDir} did not install turbo: ${still}`);
  },
  async startCache(dir) {
    const port = await freePort();
    const proc = startProcess('turborepo-remote-cache', join(turboDir, 'cache/run-cache-server.sh'), [String(port), join(dir, 'turbo-cache'), turboToken], { cwd: dir });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/v8/artifacts/status`, proc, 30_000);
    return { url, proc };
  },
  prepareWorkspace(job) {
    cpSync(turboDir, job.workspace, { recursive: true, filter: (src) => !/\/(node_modules|\.turbo|dist)$/.test(src) });
    // The packages are linked relative to node_modules, so one shared install serves every copy.
    symlinkSync(join(turboDir, 'node_modules'), join(job.workspace, 'node_modules'));
    mkdirSync(job.evidenceDir, { recursive: true });
    mkdirSync(job.stateDir, { recursive: true });
  },
  jobEnv(job, cache) {
    return {
      ...process.env,
      TURBO_API: cache.url,
      TURBO_TOKEN: turboToken,
      TURBO_TEAM: turboTeam,
      TURBO_RUNS_DIR: job.evidenceDir,
      TURBO_TELEMETRY_DISABLED: '1',
      DO_NOT_TRACK: '1',
    };
  },
  invocations(job) {
    return evidenceFiles(job).map((file) => {
      const path = join(job.evidenceDir, file);
      const tasks = parseTurboRunSummary(readFileSync(path, 'utf8'), path);
      const pick = (keep: (status: string, source: string | null) => boolean): string[] => tasks.filter((t) => keep(t.status, t.source)).map((t) => t.packageName);
      const executed = pick((status) => status !== 'HIT');
      const remoteHits = pick((status, source) => status === 'HIT' && source === 'REMOTE');
      return {
        name: file.replace(/\.json$/, ''),
        executed,
        remoteHits,
        localHits: pick((status, source) => status === 'HIT' && source !== 'REMOTE'),
        totalExecuted: executed.length,
        totalRemoteHits: remoteHits.length,
      };
    });
  },
  summaryLine(output) {
    const cached = output.match(/^\s*Cached:\s+.*$/gm)?.at(-1);
    return cached ? cached.trim().replace(/\s+/g, ' ') : '(no turbo summary in the output)';
  },
  async shutdown() {
    // turbo 2 runs no daemon for `turbo run`; nothing is left behind.
  },
};

export function realExample(name: string): RealExample {
  if (name === 'bazel') return bazelExample;
  if (name === 'turbo' || name === 'turborepo') return turboExample;
  throw new Error(`--real: unknown example "${name}" (expected bazel or turbo)`);
}
