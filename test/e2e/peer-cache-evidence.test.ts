import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCliAsync } from '../helpers/cli.js';
import { killAll, startAuthority, startPeer, writeFlatSchema } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * `--build-tool` with a build script that does not cooperate: it never writes
 * `$TASKSHARD_EVIDENCE_FILE`. The peer still reads the cache evidence of the universe build from the
 * tool's own summary line in its output (Bazel 4.2's `INFO: N processes: ...`, printed to stderr, in
 * pieces), reports the totals (source `output`: no per-step detail) to the authority and writes them to
 * `--report` as `universe.cacheEvidence`.
 */
let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-peer-evidence-');
});
afterEach(async () => {
  await killAll();
  dir.remove();
});

describe('cache evidence without the build script writing a record', () => {
  it("reads Bazel's summary line from the universe build's output and reports it, in --report and to the authority", async () => {
    const auth = await startAuthority({ db: dir.file('a.db') });
    const schema = dir.file('schema.json');
    writeFlatSchema(schema, 2);
    const script = dir.file('build.sh');
    // What Bazel 4.2 prints at the end of a build, on stderr; the summary line arrives in two writes.
    writeFileSync(
      script,
      `#!/bin/sh
if [ "$TASKSHARD_PHASE" = universe ]; then
  printf 'INFO: Elapsed time: 2.118s, Critical Path: 0.31s\\nINFO: 30 processes: 22 rem' >&2
  sleep 0.2
  printf 'ote cache hit, 8 internal.\\nINFO: Build completed successfully, 30 total actions\\n' >&2
fi
exit 0
`,
    );
    chmodSync(script, 0o755);
    const report = dir.file('report.json');
    const peer = startPeer({ name: 'p1', server: auth.wsUrl, schema, script, args: ['--build-tool', 'bazel', '--report', report] });
    expect(await peer.exit()).toBe(0);
    expect(peer.stdout).toContain(
      'universe cache evidence (bazel, from its summary line): 22 actions from cache, 0 ran here; which shared steps missed the cache needs the build\'s record (pass --execution_log_json_file="$TASKSHARD_EVIDENCE_FILE")',
    );
    const evidence = { tool: 'bazel', hits: 22, misses: 0, missedSteps: [], source: 'output' };
    const json = JSON.parse(readFileSync(report, 'utf8')) as { cohortId: string; universe: { cacheEvidence: unknown } };
    expect(json.universe.cacheEvidence).toEqual(evidence);
    const cohort = (await (await fetch(`${auth.httpUrl}/api/v1/cohorts/${json.cohortId}`)).json()) as { cacheEvidence: unknown[] };
    expect(cohort.cacheEvidence).toEqual([{ peerId: 'p1', reportedAtMs: expect.any(Number), ...evidence }]);
    // ... and `taskshard cohort ID` prints it.
    const printed = await runCliAsync(['cohort', json.cohortId, '--server', auth.httpUrl]);
    expect(printed.stdout).toMatch(/^p1 +bazel +22 +0 +unknown \(summary line only\)$/m);
  });
});
