import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, startProcess, stopAll, type RunningProcess } from './child-processes.js';
import type { RunReportJson } from '../../peer/run-record.js';
import { repoRoot, type Invocation, type JobDirs, type RealExample, type SharedCache } from './real-examples.js';

export type PeerRunReport = RunReportJson;

/**
 * Three real CI jobs on one shared cache, each in its own copy of the workspace ("separate machines
 * in miniature"): either as taskshard peers of one authority, or racing without taskshard (each
 * job just builds its universe, as CI does today). Returns what each job did in the tool's words.
 */

export type RunMode = 'taskshard' | 'race';

export interface JobResult {
  readonly dirs: JobDirs;
  readonly exitCode: number | null;
  readonly wallMs: number;
  readonly output: string;
  readonly invocations: readonly Invocation[];
  /** The tool's own summary line of the job's last (universe) build. */
  readonly summaryLine: string;
  /** The peer's `--report` file (taskshard mode), parsed; null when it wrote none. */
  readonly report: PeerRunReport | null;
}

export interface RunResult {
  readonly mode: RunMode;
  readonly jobs: readonly JobResult[];
  /** First job start to last job end. */
  readonly wallMs: number;
  /** Sum of the jobs' wall times: what the CI runners were occupied for, waiting included. */
  readonly runnerMs: number;
  /** The authority's log (taskshard mode). */
  readonly authorityLog: string;
  /** The cohort as the authority's API shows it at the end (taskshard mode; one cohort), else null. */
  readonly cohort: unknown;
  /** What the authority recorded from the peers' `--build-tool` reports (taskshard mode), by peer id. */
  readonly recordedEvidence: Readonly<Record<string, { tool: string; hits: number; misses: number; missedSteps: string[]; source: string }>>;
}

export interface RunOptions {
  readonly jobs?: number;
  /** Per job. Default 170 s. */
  readonly timeoutMs?: number;
  /** Called with each line of a job's output (the demo prints some). */
  readonly onLine?: (jobId: string, line: string) => void;
  /** Extra `taskshard peer` flags (before `--`). */
  readonly peerFlags?: readonly string[];
  /** Extra `taskshard server` flags. */
  readonly serverFlags?: readonly string[];
  /** Keep the temporary directory (its path is in the result's job dirs). */
  readonly keep?: boolean;
  /** Extra environment for one job (by job id: job-a, job-b, ...). */
  readonly jobEnv?: (jobId: string) => NodeJS.ProcessEnv;
  /** These jobs reach the cache through a door that refuses to store action results (`startResultRefusingCache`). */
  readonly resultRefusingCacheFor?: readonly string[];
}

const cli = join(repoRoot, 'dist/cli/main.js');

/** Slow actions executed per step id, summed over every job and invocation. */
export function executedCounts(result: RunResult): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of result.jobs) for (const inv of job.invocations) for (const name of inv.executed) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}

async function startAuthority(dir: string, flags: readonly string[]): Promise<{ proc: RunningProcess; url: string }> {
  const port = await freePort();
  const proc = startProcess('taskshard server', process.execPath, [cli, 'server', '--port', String(port), '--db', join(dir, 'authority.db'), '--log-level', 'warn', ...flags], { cwd: dir });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (!proc.running) throw new Error(`the authority exited with ${proc.code ?? proc.signal}:\n${proc.output}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return { proc, url };
    if (Date.now() > deadline) throw new Error(`the authority did not answer /healthz within 20 s:\n${proc.output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs the jobs and tears everything down (Bazel servers shut down, cache and authority stopped by
 * pid, temp directory removed unless `keep`), whether or not they succeed.
 */
export async function runJobs(example: RealExample, mode: RunMode, options: RunOptions = {}): Promise<RunResult> {
  const jobCount = options.jobs ?? 3;
  const timeoutMs = options.timeoutMs ?? 170_000;
  const root = mkdtempSync(join(tmpdir(), `ts-${example.name}-${mode}-`));
  const dirs: JobDirs[] = Array.from({ length: jobCount }, (_, i) => {
    const id = `job-${String.fromCharCode(97 + i)}`;
    return { id, workspace: join(root, id, 'ws'), evidenceDir: join(root, id, 'evidence'), stateDir: join(root, id, 'state') };
  });
  let cache: SharedCache | null = null;
  let refusing: SharedCache | null = null;
  let authorityLog = '';
  let authority: RunningProcess | null = null;
  let authorityUrl = '';
  try {
    cache = await example.startCache(root);
    if ((options.resultRefusingCacheFor ?? []).length > 0) {
      if (example.startResultRefusingCache === undefined) throw new Error(`resultRefusingCacheFor: ${example.name} has no such cache`);
      refusing = await example.startResultRefusingCache(root, cache);
    }
    for (const job of dirs) example.prepareWorkspace(job);
    const schema = JSON.parse(readFileSync(join(example.sourceDir, 'taskshard.json'), 'utf8')) as { universe: string };
    let server = '';
    if (mode === 'taskshard') {
      const started = await startAuthority(root, options.serverFlags ?? []);
      authority = started.proc;
      authorityUrl = started.url;
      server = started.url.replace(/^http/, 'ws');
    }
    const t0 = performance.now();
    const runs = dirs.map(async (job) => {
      const args =
        mode === 'taskshard'
          ? [cli, 'peer', '--server', server, '--schema', join(job.workspace, 'taskshard.json'), '--cache-id', `${example.name}-example`, '--peer-id', job.id,
              '--repo', `https://example.com/acme/${example.name}-example.git`, '--base-ref', 'main', '--change-ref', 'refs/changes/14/1',
              // Verified completion and cache evidence with the built-in support for the tool.
              '--verify', `builtin:${example.name}`, '--build-tool', example.name, '--report', join(root, job.id, 'report.json'), ...(options.peerFlags ?? []),
              '--', 'ci/build.sh', '{step}', '{target}']
          : [join(job.workspace, 'ci/build.sh'), 'universe', schema.universe];
      const command = mode === 'taskshard' ? process.execPath : args.shift()!;
      const start = performance.now();
      const jobCache = refusing !== null && options.resultRefusingCacheFor?.includes(job.id) ? refusing : cache!;
      const proc = startProcess(job.id, command, args, { cwd: job.workspace, env: { ...example.jobEnv(job, jobCache), ...options.jobEnv?.(job.id) }, onLine: (line) => options.onLine?.(job.id, line) });
      const exitCode = await proc.exit(timeoutMs);
      return { proc, exitCode, wallMs: performance.now() - start };
    });
    const done = await Promise.all(runs);
    const wallMs = performance.now() - t0;
    const jobs = dirs.map((job, i): JobResult => ({
      dirs: job,
      exitCode: done[i]!.exitCode,
      wallMs: done[i]!.wallMs,
      output: done[i]!.proc.output,
      invocations: example.invocations(job),
      summaryLine: example.summaryLine(done[i]!.proc.output),
      report: mode === 'taskshard' && existsSync(join(root, job.id, 'report.json')) ? (JSON.parse(readFileSync(join(root, job.id, 'report.json'), 'utf8')) as PeerRunReport) : null,
    }));
    authorityLog = authority?.output ?? '';
    const recordedEvidence: Record<string, { tool: string; hits: number; misses: number; missedSteps: string[]; source: string }> = {};
    const cohortIds = new Set(jobs.map((j) => j.output.match(/joined cohort (\S+)/)?.[1]).filter((id): id is string => id !== undefined));
    for (const cohortId of cohortIds) {
      const res = await fetch(`${authorityUrl}/api/v1/cohorts/${cohortId}/cache-evidence`);
      if (!res.ok) throw new Error(`GET cache-evidence of ${cohortId}: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { peers: { peerId: string; tool: string; hits: number; misses: number; missedSteps: string[]; source: string }[] };
      for (const { peerId, tool, hits, misses, missedSteps, source } of body.peers) recordedEvidence[peerId] = { tool, hits, misses, missedSteps, source };
    }
    const onlyCohort = cohortIds.size === 1 ? [...cohortIds][0]! : null;
    const cohort = onlyCohort === null ? null : ((await (await fetch(`${authorityUrl}/api/v1/cohorts/${onlyCohort}`)).json()) as unknown);
    return { mode, jobs, wallMs, runnerMs: jobs.reduce((sum, j) => sum + j.wallMs, 0), authorityLog, recordedEvidence, cohort };
  } finally {
    const problems: string[] = [];
    for (const job of dirs) await example.shutdown(job).catch((err: Error) => problems.push(err.message));
    await stopAll();
    if (!options.keep) rmSync(root, { recursive: true, force: true });
    if (problems.length > 0) process.stderr.write(`teardown: ${problems.join('\n')}\n`);
  }
}
