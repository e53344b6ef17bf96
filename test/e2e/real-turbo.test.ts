import { beforeAll, describe, expect, it } from 'vitest';
import { turboExample } from '../../scripts/real-build/real-examples.js';
import { runJobs } from '../../scripts/real-build/run-jobs.js';
import { expectEachStepBuiltOnceAndSharedThroughTheCache } from '../helpers/real-build.js';

/**
 * examples/turborepo for real: turbo (telemetry off) and turborepo-remote-cache from the npm
 * registry, installed here with `npm ci` into examples/turborepo (its own lockfile), the authority
 * and three `taskshard peer` jobs, each in its own copy of the workspace with its own local cache.
 * Asserted from turbo's run summaries (cache.status, cache.source).
 */
describe('examples/turborepo with taskshard', () => {
  // CI starts without examples/turborepo/node_modules: `npm ci` from its lockfile (about 10 s).
  beforeAll(() => turboExample.install(), 160_000);

  it('builds each package once across three jobs; every universe takes the other jobs\' packages from the remote cache', async () => {
    const result = await runJobs(turboExample, 'taskshard', { serverFlags: ['--straggler-factor', '0'], timeoutMs: 150_000 });
    expectEachStepBuiltOnceAndSharedThroughTheCache(result, ['a', 'b', 'c', 'd', 'e', 'f']);
    // turbo's own words: every universe task came from a cache.
    for (const job of result.jobs) expect(job.summaryLine).toBe('Cached: 6 cached, 6 total');
  }, 175_000);
});
