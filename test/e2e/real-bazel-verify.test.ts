import { describe, expect, it } from 'vitest';
import { bazelExample } from '../../scripts/real-build/real-examples.js';
import { runJobs } from '../../scripts/real-build/run-jobs.js';
import { requireTool } from '../helpers/tools.js';

/**
 * Verified completion for real with Bazel (examples/bazel): job-a reaches the shared nginx cache
 * through a door that serves everything but refuses to store action results (`PUT /ac/...` is 403,
 * as with a read-only action-cache credential), so the steps it builds never become cache hits for
 * anyone. `--verify builtin:bazel` finds their action-cache entries missing; job-a reports each as
 * not published and the authority leases it again to another job, which builds and publishes it.
 * Asserted from Bazel's own execution logs and output; backups off; runJobs stops every Bazel
 * server and both nginx processes by pid.
 */
const bazel = requireTool('bazel');
const nginx = requireTool('nginx', ['nginx', '/usr/sbin/nginx']);
const steps = ['codegen', 'core', 'net', 'storage', 'crypto', 'ui'];

describe.skipIf(bazel === null || nginx === null)('verified completion with Bazel', () => {
  it('a step whose action results never reached the cache is built again by another job; nothing fails', async () => {
    const result = await runJobs(bazelExample, 'taskshard', { serverFlags: ['--straggler-factor', '0'], timeoutMs: 150_000, resultRefusingCacheFor: ['job-a'] });
    const explain = result.jobs.map((j) => `${j.dirs.id} exit ${j.exitCode}:\n${j.output.slice(-3000)}`).join('\n---\n');
    expect(result.jobs.map((j) => j.exitCode), explain).toEqual([0, 0, 0]);
    const [a, ...others] = result.jobs;
    // What job-a built in its steps, in Bazel's own words (its execution logs: slow genrules that ran).
    const builtByA = [...new Set(a!.invocations.filter((i) => i.name !== 'universe').flatMap((i) => i.executed))];
    expect(builtByA.length, explain).toBeGreaterThan(0);
    // Bazel itself says the cache refused to store its results ...
    expect(a!.output, explain).toMatch(/WARNING: .*Writing to Remote Cache/);
    // ... and the verifier finds no action-cache entry for the step's actions, so it is not published.
    for (const step of builtByA) {
      expect(a!.output).toMatch(new RegExp(`step ${step} built in .* but NOT published: built, but --verify says it is not in the remote cache \\(exit 1\\): \\d+ of \\d+ actions have no action-cache entry in http://127\\.0\\.0\\.1:\\d+: .*Genrule [0-9a-f]{12} \\(bazel-out/k8-fastbuild/bin/[a-z/]+/${step}_gen\\.c\\)`));
    }
    // Every step was built, and published, by a job whose cache took it: each slow action ran there exactly once.
    const builtByOthers = new Map<string, number>();
    for (const job of others) for (const inv of job.invocations) if (inv.name !== 'universe') for (const s of inv.executed) builtByOthers.set(s, (builtByOthers.get(s) ?? 0) + 1);
    expect(Object.fromEntries(builtByOthers), explain).toEqual(Object.fromEntries(steps.map((s) => [s, 1])));
    // The other jobs' universes took every slow action from the remote cache; job-a's ran none either.
    for (const job of result.jobs) {
      const universe = job.invocations.find((i) => i.name === 'universe');
      expect(universe?.executed, `${job.dirs.id}'s universe executed slow work`).toEqual([]);
    }
    for (const job of others) expect(new Set(job.invocations.flatMap((i) => [...i.executed, ...i.remoteHits]))).toEqual(new Set(steps));
    // The authority: no step failed, the cohort succeeded, and it says why each of job-a's steps was leased again.
    const timeline = (result.cohort as { timeline: { kind: string; stepId: string | null }[] }).timeline;
    expect(timeline.filter((e) => e.kind === 'step.failed' || e.kind === 'step.attempt-failed')).toEqual([]);
    expect(new Set(timeline.filter((e) => e.kind === 'step.unpublished').map((e) => e.stepId))).toEqual(new Set(builtByA));
    expect(timeline.filter((e) => e.kind.startsWith('cohort.')).map((e) => e.kind)).toEqual(['cohort.created', 'cohort.complete']);
  }, 175_000);
});
