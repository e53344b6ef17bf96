import { describe, expect, it } from 'vitest';
import { bazelExample } from '../../scripts/real-build/real-examples.js';
import { runJobs } from '../../scripts/real-build/run-jobs.js';
import { expectEachStepBuiltOnceAndSharedThroughTheCache } from '../helpers/real-build.js';
import { requireTool } from '../helpers/tools.js';

/**
 * examples/bazel for real: Debian's Bazel 4.2, nginx as the HTTP remote cache, the authority and
 * three `taskshard peer` jobs, each in its own copy of the workspace with its own output base.
 * Asserted from Bazel's execution logs. Backups are off so a loaded machine cannot start a second
 * copy of a slow step; runJobs shuts down every Bazel server and stops nginx by pid.
 */
const bazel = requireTool('bazel');
const nginx = requireTool('nginx', ['nginx', '/usr/sbin/nginx']);

describe.skipIf(bazel === null || nginx === null)('examples/bazel with taskshard', () => {
  it('builds each slow action once across three jobs; every universe takes the other jobs\' steps from the remote cache', async () => {
    const result = await runJobs(bazelExample, 'taskshard', { serverFlags: ['--straggler-factor', '0'], timeoutMs: 150_000 });
    expectEachStepBuiltOnceAndSharedThroughTheCache(result, ['codegen', 'core', 'net', 'storage', 'crypto', 'ui']);
    // Bazel's own summary line of each universe build counts remote cache hits.
    for (const job of result.jobs) expect(job.summaryLine).toMatch(/^INFO: \d+ processes: [1-9]\d* remote cache hit/);
  }, 175_000);
});
