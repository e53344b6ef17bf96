import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bazelCacheEvidence,
  cacheEvidenceFromOutput,
  describeCacheEvidence,
  parseBazelExecLog,
  parseBazelProcessSummary,
  parseTurboRunSummary,
  readCacheEvidence,
  SummaryLineCollector,
  turboCacheEvidence,
} from '../../peer/cache-evidence.js';
import { cacheEvidenceSchema } from '../../shared/protocol.js';

/** Spawn records shaped like Bazel 4.2's `--execution_log_json_file` (pretty-printed, concatenated). */
function spawnRecord(mnemonic: string, runner: string, outputs: string[], hit: boolean): string {
  return JSON.stringify(
    {
      commandArgs: ['/bin/bash', '-c', 'echo "{}" > x'],
      listedOutputs: outputs,
      remotable: true,
      cacheable: true,
      mnemonic,
      actualOutputs: outputs.map((path, i) => ({ path, digest: { hash: String(i).repeat(64).slice(0, 64), sizeBytes: '12', hashFunctionName: 'SHA-256' } })),
      runner,
      ...(hit ? { remoteCacheHit: true } : {}),
      status: '',
      exitCode: 0,
      remoteCacheable: true,
    },
    null,
    2,
  );
}

const steps = [
  { id: 'codegen', target: '//gen/...' },
  { id: 'core', target: '//libs/core/...' },
  { id: 'net', target: '//libs/net:net' },
];

const execLog = [
  spawnRecord('Genrule', 'remote cache hit', ['bazel-out/k8-fastbuild/bin/gen/codegen_gen.c'], true),
  spawnRecord('CppCompile', 'local', ['bazel-out/k8-fastbuild/bin/libs/core/_objs/core/core_gen.pic.o'], false),
  spawnRecord('CppLink', 'remote cache hit', ['bazel-out/k8-fastbuild/bin/libs/net/libnet.a'], true),
  spawnRecord('CppLink', 'local', ['bazel-out/k8-fastbuild/bin/app/app'], false),
].join('\n');

describe('Bazel execution log', () => {
  it('reads concatenated spawn records, braces inside strings included', () => {
    const spawns = parseBazelExecLog(execLog);
    expect(spawns.map((s) => [s.mnemonic, s.remoteCacheHit, s.remoteCacheable])).toEqual([
      ['Genrule', true, true],
      ['CppCompile', false, true],
      ['CppLink', true, true],
      ['CppLink', false, true],
    ]);
    expect(spawns[0]!.outputs[0]).toEqual({ path: 'bazel-out/k8-fastbuild/bin/gen/codegen_gen.c', sha256: '0'.repeat(64), sizeBytes: 12 });
  });

  it('names the offset of what is not a log', () => {
    expect(() => parseBazelExecLog('{"mnemonic": "A"} oops', 'x.json')).toThrow(/x.json: unexpected "o" at offset 18/);
    expect(() => parseBazelExecLog('{"mnemonic": "A"', 'x.json')).toThrow(/x.json: truncated/);
    expect(() => parseBazelExecLog('{"tasks": []}', 'x.json')).toThrow(/has no mnemonic/);
  });

  it('turns a universe log into evidence: hits, misses and the steps whose packages had misses', () => {
    const evidence = bazelCacheEvidence(parseBazelExecLog(execLog), steps);
    expect(evidence).toEqual({ tool: 'bazel', hits: 2, misses: 2, missedSteps: ['core'] });
    expect(cacheEvidenceSchema.parse(evidence)).toEqual(evidence);
    expect(describeCacheEvidence(evidence)).toBe('universe cache evidence (bazel): 2 actions from cache, 2 ran here; shared steps NOT from the cache: core');
  });
});

describe("Bazel's process summary line", () => {
  it('counts hits and what really ran', () => {
    expect(parseBazelProcessSummary('...\nINFO: 36 processes: 22 remote cache hit, 14 internal.\nINFO: Build completed successfully, 36 total actions\n')).toEqual({
      total: 36,
      byRunner: { 'remote cache hit': 22, internal: 14 },
      remoteCacheHits: 22,
      executed: 0,
    });
    expect(parseBazelProcessSummary('INFO: 42 processes: 5 remote cache hit, 16 internal, 21 local.')!.executed).toBe(21);
    expect(parseBazelProcessSummary('INFO: 1 process: 1 internal.')!.executed).toBe(0);
    expect(parseBazelProcessSummary('no summary here')).toBeNull();
  });
});

const turboSummary = JSON.stringify({
  id: 'run1',
  turboVersion: '2.11.11',
  tasks: [
    { taskId: 'a#build', package: 'a', hash: '6b732f73d1e0f16e', cache: { local: false, remote: true, status: 'HIT', source: 'REMOTE', timeSaved: 0 } },
    { taskId: 'b#build', package: 'b', hash: 'bbe546bf9e3979f1', cache: { local: false, remote: false, status: 'MISS', timeSaved: 0 } },
    { taskId: 'c#build', package: 'c', hash: 'c9931460ca334837', cache: { local: true, remote: false, status: 'HIT', source: 'LOCAL', timeSaved: 0 } },
  ],
});

describe('turbo run summary', () => {
  it('reads each task with its cache status and source', () => {
    expect(parseTurboRunSummary(turboSummary)).toEqual([
      { taskId: 'a#build', packageName: 'a', hash: '6b732f73d1e0f16e', status: 'HIT', source: 'REMOTE' },
      { taskId: 'b#build', packageName: 'b', hash: 'bbe546bf9e3979f1', status: 'MISS', source: null },
      { taskId: 'c#build', packageName: 'c', hash: 'c9931460ca334837', status: 'HIT', source: 'LOCAL' },
    ]);
    expect(() => parseTurboRunSummary('{}', 's.json')).toThrow(/s.json: no "tasks" list/);
    expect(() => parseTurboRunSummary('{"tasks":[{"taskId":"a#build"}]}', 's.json')).toThrow(/tasks\[0\] lacks/);
  });

  it('a step is missed when its package ran here', () => {
    const evidence = turboCacheEvidence(parseTurboRunSummary(turboSummary), [{ id: 'a', target: 'a' }, { id: 'b', target: 'b' }, { id: 'c', target: 'c' }]);
    expect(evidence).toEqual({ tool: 'turbo', hits: 2, misses: 1, missedSteps: ['b'] });
  });
});

describe('readCacheEvidence', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskshard-evidence-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('recognizes the tool with auto, and says why when there is no record', () => {
    const log = join(dir, 'bazel.json');
    const summary = join(dir, 'turbo.json');
    writeFileSync(log, execLog);
    writeFileSync(summary, turboSummary);
    expect(readCacheEvidence('auto', log, steps)).toMatchObject({ tool: 'bazel', hits: 2 });
    expect(readCacheEvidence('auto', summary, [{ id: 'b', target: 'b' }])).toEqual({ tool: 'turbo', hits: 2, misses: 1, missedSteps: ['b'] });
    expect(readCacheEvidence('bazel', summary, steps)).toMatch(/has no mnemonic/);
    expect(readCacheEvidence('auto', join(dir, 'none.json'), steps)).toMatch(/left no record in \$TASKSHARD_EVIDENCE_FILE/);
  });
});

describe("evidence from the build's output when it left no record", () => {
  it('keeps only summary lines, across chunks that split them, per stream, without colours', () => {
    const lines = new SummaryLineCollector();
    lines.push('stderr', 'INFO: Elapsed time: 3.1s, Critical Path: 0.4s\nINFO: 36 proc');
    lines.push('stdout', 'building //libs/core...\n');
    lines.push('stderr', 'esses: 22 remote cache hit, 14 internal.\r\nINFO: Build completed successfully, 36 total actions\n');
    lines.push('stdout', '\x1b[1m Cached:    5 cached, 6 total\x1b[0m\n  Time: 1.2s');
    expect(lines.text()).toBe('INFO: 36 processes: 22 remote cache hit, 14 internal.\n Cached:    5 cached, 6 total');
    lines.reset();
    expect(lines.text()).toBe('');
  });

  it("turns Bazel's or turbo's summary line into totals, saying which steps missed is unknown", () => {
    const bazelLine = 'INFO: 40 processes: 22 remote cache hit, 14 internal, 4 local.';
    expect(cacheEvidenceFromOutput('bazel', bazelLine)).toEqual({ tool: 'bazel', hits: 22, misses: 4, missedSteps: [], source: 'output' });
    expect(cacheEvidenceFromOutput('auto', ' Cached:    5 cached, 6 total')).toEqual({ tool: 'turbo', hits: 5, misses: 1, missedSteps: [], source: 'output' });
    expect(cacheEvidenceFromOutput('turbo', bazelLine)).toBe("its output has no turbo's `Cached: N cached, M total` line");
    const e = cacheEvidenceFromOutput('bazel', bazelLine);
    expect(typeof e !== 'string' && describeCacheEvidence(e)).toBe(
      'universe cache evidence (bazel, from its summary line): 22 actions from cache, 4 ran here; which shared steps missed the cache needs the build\'s record (pass --execution_log_json_file="$TASKSHARD_EVIDENCE_FILE")',
    );
  });

  it('readCacheEvidence falls back to the output only when there is no record', () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskshard-evidence-output-'));
    try {
      const log = join(dir, 'bazel.json');
      const output = 'INFO: 3 processes: 2 remote cache hit, 1 internal.';
      expect(readCacheEvidence('bazel', log, steps, output)).toEqual({ tool: 'bazel', hits: 2, misses: 0, missedSteps: [], source: 'output' });
      expect(readCacheEvidence('bazel', undefined, steps, output)).toMatchObject({ source: 'output' });
      expect(readCacheEvidence('bazel', log, steps, 'nothing')).toMatch(/left no record in \$TASKSHARD_EVIDENCE_FILE .*, and its output has no Bazel's `INFO: N processes: \.\.\.` line/);
      writeFileSync(log, execLog);
      expect(readCacheEvidence('bazel', log, steps, output)).toMatchObject({ tool: 'bazel', hits: 2, missedSteps: expect.any(Array) });
      expect(readCacheEvidence('bazel', log, steps, output)).not.toHaveProperty('source');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
