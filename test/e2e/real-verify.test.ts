import { beforeAll, describe, expect, it } from 'vitest';
import { turboExample } from '../../scripts/real-build/real-examples.js';
import { runJobs } from '../../scripts/real-build/run-jobs.js';

/**
 * Verified completion for real (examples/turborepo): job-a's turbo may read the remote cache but
 * not write it (TURBO_CACHE=local:rw,remote:r, as a job with a read-only cache credential would),
 * so what it builds never reaches the cache. `--verify builtin:turbo` finds the artifact missing;
 * job-a reports the step as not published and the authority leases it again to another job, which
 * builds and publishes it. Every universe still gets every package from a cache.
 */
describe('verified completion with turbo', () => {
  beforeAll(() => turboExample.install(), 160_000);

  it('a step whose result never reached the cache is built again by another job, and nothing fails', async () => {
    const result = await runJobs(turboExample, 'taskshard', {
      serverFlags: ['--straggler-factor', '0'],
      timeoutMs: 150_000,
      jobEnv: (id) => (id === 'job-a' ? { TURBO_CACHE: 'local:rw,remote:r' } : {}),
    });
    const explain = result.jobs.map((j) => `${j.dirs.id} exit ${j.exitCode}:\n${j.output.slice(-2500)}`).join('\n---\n');
    expect(result.jobs.map((j) => j.exitCode), explain).toEqual([0, 0, 0]);
    const [a, ...others] = result.jobs;
    // What job-a built in its steps, in turbo's own words (MISS: executed).
    const builtByA = [...new Set(a!.invocations.filter((i) => i.name !== 'universe').flatMap((i) => i.executed))];
    expect(builtByA.length, explain).toBeGreaterThan(0);
    for (const step of builtByA) expect(a!.output).toMatch(new RegExp(`step ${step} built in .* but NOT published: built, but --verify says it is not in the remote cache \\(exit 1\\): no artifact on http://127\\.0\\.0\\.1:\\d+ for ${step}#build`));
    // Every package was built, and published, by a job that could write the cache.
    const builtByOthers = new Set(others.flatMap((j) => j.invocations.filter((i) => i.name !== 'universe').flatMap((i) => i.executed)));
    for (const step of ['a', 'b', 'c', 'd', 'e', 'f']) expect(builtByOthers.has(step), `${step} was not built by job-b or job-c\n${explain}`).toBe(true);
    // The other jobs' universes took everything from a cache; job-a's took the rest from the remote one.
    for (const job of others) expect(job.summaryLine).toBe('Cached: 6 cached, 6 total');
    const universeA = a!.invocations.find((i) => i.name === 'universe')!;
    expect(universeA.executed).toEqual([]);
    expect(new Set(universeA.remoteHits)).toEqual(new Set(['a', 'b', 'c', 'd', 'e', 'f'].filter((s) => !builtByA.includes(s))));
    // The authority: the cohort succeeded and no step failed for it.
    const timeline = (result.cohort as { timeline: { kind: string; stepId: string | null }[] }).timeline;
    expect(timeline.filter((e) => e.kind === 'step.failed' || e.kind === 'step.attempt-failed')).toEqual([]);
    // ... and it says why each of job-a's steps was leased again.
    expect(new Set(timeline.filter((e) => e.kind === 'step.unpublished').map((e) => e.stepId))).toEqual(new Set(builtByA));
    expect(timeline.filter((e) => e.kind.startsWith('cohort.')).map((e) => e.kind)).toEqual(['cohort.created', 'cohort.complete']);
  }, 175_000);
});
