import { expect } from 'vitest';
import { executedCounts, type RunResult } from '../../scripts/real-build/run-jobs.js';

/**
 * The claims of the real-build e2e tests, checked from the build tools' own records (Bazel's
 * execution logs, turbo's run summaries) of every invocation of every job.
 */
export function expectEachStepBuiltOnceAndSharedThroughTheCache(result: RunResult, stepIds: readonly string[]): void {
  const explain = result.jobs.map((j) => `${j.dirs.id} exit ${j.exitCode}:\n${j.output.slice(-2500)}`).join('\n---\n');
  // Every job succeeded.
  expect(result.jobs.map((j) => j.exitCode), explain).toEqual(result.jobs.map(() => 0));
  // Each slow action ran exactly once across all jobs and all their invocations.
  const counts = Object.fromEntries(executedCounts(result));
  expect(counts, explain).toEqual(Object.fromEntries(stepIds.map((id) => [id, 1])));
  for (const job of result.jobs) {
    const universe = job.invocations.find((i) => i.name === 'universe');
    expect(universe, `${job.dirs.id} has no universe build record`).toBeDefined();
    // The universe ran none of the slow work itself ...
    expect(universe!.executed, `${job.dirs.id}'s universe executed slow work`).toEqual([]);
    // ... and every step another job built came to this job from the remote cache.
    const own = new Set(job.invocations.flatMap((i) => i.executed));
    const fromRemote = new Set(job.invocations.flatMap((i) => i.remoteHits));
    const others = stepIds.filter((id) => !own.has(id));
    expect(others.length, `${job.dirs.id} built everything itself`).toBeLessThan(stepIds.length);
    for (const id of others) expect(fromRemote.has(id), `${job.dirs.id} did not take ${id} from the remote cache`).toBe(true);
  }
  // The peer's own reading of the universe build (--build-tool): no shared step missed the cache.
  for (const job of result.jobs) {
    expect(job.output, `${job.dirs.id}: cache evidence`).toMatch(/universe cache evidence \((bazel|turbo)\): [1-9]\d* (actions|tasks) from cache, \d+ ran here; every shared step came from the cache or was built here/);
    expect(job.output, `${job.dirs.id}: a step was not published`).not.toMatch(/NOT published/);
  }
  // ... and the authority recorded it for every job (GET /api/v1/cohorts/:id/cache-evidence).
  expect(Object.keys(result.recordedEvidence).sort()).toEqual(result.jobs.map((j) => j.dirs.id).sort());
  for (const recorded of Object.values(result.recordedEvidence)) expect(recorded).toMatchObject({ missedSteps: [], source: 'record' });
  // ... and each peer's --report carries the same evidence as universe.cacheEvidence.
  for (const job of result.jobs) {
    const inReport = job.report?.universe?.cacheEvidence;
    expect(inReport, `${job.dirs.id}: --report has no universe.cacheEvidence`).toBeDefined();
    expect(inReport!.hits).toBeGreaterThan(0);
    const { source, ...counts } = inReport!;
    expect({ ...counts, source: source ?? 'record' }).toEqual(result.recordedEvidence[job.dirs.id]);
  }
  // Between them, the jobs split the work: more than one job built something.
  expect(result.jobs.filter((j) => j.invocations.some((i) => i.executed.length > 0)).length).toBeGreaterThan(1);
}
