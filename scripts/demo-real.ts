import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { executedCounts, runJobs, type RunResult } from './real-build/run-jobs.js';
import { realExample, repoRoot, type RealExample } from './real-build/real-examples.js';

/**
 * `npm run demo -- --real bazel|turbo`: a real build tool and a real remote cache. Starts the cache
 * (nginx WebDAV for Bazel, turborepo-remote-cache for turbo), the authority and three jobs, each in
 * its own copy of the workspace with its own output base; prints who built what and each job's
 * evidence in the tool's own words; then runs the same three jobs without taskshard, racing on an
 * empty cache, and prints both side by side.
 */

const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function printRun(example: RealExample, result: RunResult): void {
  const unit = example.name === 'bazel' ? 'slow actions' : 'tasks';
  for (const job of result.jobs) {
    const built = [...new Set(job.invocations.filter((i) => i.name !== 'universe').flatMap((i) => i.executed))];
    const universe = job.invocations.find((i) => i.name === 'universe');
    out(`  ${job.dirs.id}: exit ${job.exitCode}, ${sec(job.wallMs)}`);
    if (result.mode === 'taskshard') out(`    built its steps: ${built.join(', ') || 'none'}`);
    if (universe) {
      out(`    universe: ${unit} executed here: ${universe.executed.join(', ') || 'none'}; from the remote cache: ${universe.remoteHits.join(', ') || 'none'}` +
        (universe.localHits.length > 0 ? `; from its own local cache: ${universe.localHits.join(', ')}` : ''));
    }
    out(`    ${example.toolName} says: ${job.summaryLine}`);
  }
}

function totals(result: RunResult): { slow: number; actions: number } {
  const slow = [...executedCounts(result).values()].reduce((a, b) => a + b, 0);
  const actions = result.jobs.flatMap((j) => j.invocations).reduce((a, i) => a + i.totalExecuted, 0);
  return { slow, actions };
}

async function main(): Promise<number> {
  const at = process.argv.indexOf('--real');
  const example = realExample(process.argv[at + 1] ?? '');
  if (example.name === 'turbo' && example.missing() !== null) {
    out('installing examples/turborepo (npm ci: turbo and turborepo-remote-cache) ...');
    example.install();
  }
  const missing = example.missing();
  if (missing) {
    process.stderr.write(`demo --real ${example.name}: ${missing}\n`);
    return 2;
  }
  if (!process.argv.includes('--no-build')) {
    out('building dist/ ...');
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const local = example.name === 'bazel' ? 'output base' : 'local cache';
  out(`${example.toolName}: three jobs, each in its own copy of ${example.sourceDir} with its own ${local}, one shared remote cache\n`);

  out('with taskshard (authority on 127.0.0.1, backups off):');
  const shared = await runJobs(example, 'taskshard', {
    serverFlags: ['--straggler-factor', '0'],
    onLine: (job, line) => {
      if (/^taskshard: .*(joined cohort|assigned|built by|complete)/.test(line)) out(`  [${job}] ${line.replace(/^taskshard: /, '')}`);
    },
  });
  printRun(example, shared);
  for (const [peerId, e] of Object.entries(shared.recordedEvidence)) {
    out(`  the authority recorded for ${peerId}: ${e.hits} from cache, ${e.misses} ran here, shared steps not from the cache: ${e.missedSteps.join(', ') || 'none'}`);
  }
  const counts = executedCounts(shared);
  out(`  who built what: ${[...counts].map(([step, n]) => `${step} x${n}`).join(', ')}`);

  out('\nwithout taskshard (the same three jobs racing on an empty cache):');
  const race = await runJobs(example, 'race');
  printRun(example, race);
  out(`  who built what: ${[...executedCounts(race)].map(([step, n]) => `${step} x${n}`).join(', ')}`);

  const a = totals(shared);
  const b = totals(race);
  const unit = example.name === 'bazel' ? 'slow actions' : 'package builds';
  out('\n                      with taskshard   racing without');
  out(`  ${unit.padEnd(19)} ${String(a.slow).padStart(14)}   ${String(b.slow).padStart(14)}`);
  out(`  ${(example.name === 'bazel' ? 'all actions run' : 'all tasks run').padEnd(19)} ${String(a.actions).padStart(14)}   ${String(b.actions).padStart(14)}`);
  out(`  ${'wall time'.padEnd(19)} ${sec(shared.wallMs).padStart(14)}   ${sec(race.wallMs).padStart(14)}`);
  out(`  ${'runner time'.padEnd(19)} ${sec(shared.runnerMs).padStart(14)}   ${sec(race.runnerMs).padStart(14)}`);
  const failed = [...shared.jobs, ...race.jobs].filter((j) => j.exitCode !== 0);
  if (failed.length > 0) {
    for (const job of failed) process.stderr.write(`\n${job.dirs.id} exited ${job.exitCode}; its output ends:\n${job.output.slice(-3000)}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo --real failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
