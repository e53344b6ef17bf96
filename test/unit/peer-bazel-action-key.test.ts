import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionDigest, parseActionResult } from '../../peer/bazel-action-key.js';
import { parseBazelExecLog } from '../../peer/cache-evidence.js';

/**
 * Action keys recomputed from an execution log, checked against what a real Bazel 4.2 wrote to its
 * HTTP cache for examples/bazel //gen/... (test/fixtures/bazel-4.2: the log and the `ac/` entries,
 * each file named by the key Bazel used).
 */
const fixture = join(import.meta.dirname, '../fixtures/bazel-4.2');
const spawns = parseBazelExecLog(readFileSync(join(fixture, 'codegen.exec-log.json'), 'utf8'));
const keys = readdirSync(join(fixture, 'ac')).sort();

describe('Bazel action keys from the execution log', () => {
  it('are the keys Bazel 4.2 stored its action results under', () => {
    expect(spawns.map((s) => s.mnemonic)).toEqual(['Genrule', 'CppCompile', 'CppLink', 'CppLink']);
    expect(spawns.map((s) => actionDigest(s.actionKey)).sort()).toEqual(keys);
  });

  it('change with anything that changes the action: an argument, the environment, an input digest, the platform', () => {
    const genrule = spawns[0]!.actionKey;
    const base = actionDigest(genrule);
    expect(actionDigest({ ...genrule, arguments: [...genrule.arguments, '-v'] })).not.toBe(base);
    expect(actionDigest({ ...genrule, environment: [{ name: 'PATH', value: '/usr/bin' }] })).not.toBe(base);
    expect(actionDigest({ ...genrule, inputs: genrule.inputs.map((i, n) => (n === 0 ? { ...i, sha256: '0'.repeat(64) } : i)) })).not.toBe(base);
    expect(actionDigest({ ...genrule, platform: null })).not.toBe(base);
    // Environment order does not matter: Bazel sorts it by name.
    expect(actionDigest({ ...genrule, environment: [...genrule.environment].reverse() })).toBe(base);
  });

  it('a digest the log records itself (Bazel 5+) is used as it is', () => {
    expect(actionDigest({ ...spawns[0]!.actionKey, loggedDigest: 'ab'.repeat(32) })).toBe('ab'.repeat(32));
  });

  it("parses each entry's ActionResult: the outputs the execution log reports, with the same digests", () => {
    for (const spawn of spawns) {
      const result = parseActionResult(readFileSync(join(fixture, 'ac', actionDigest(spawn.actionKey))));
      expect(result.exitCode).toBe(0);
      expect(result.outputFiles.map((o) => ({ path: o.path, sha256: o.sha256, sizeBytes: o.sizeBytes })).sort((a, b) => a.path.localeCompare(b.path))).toEqual(
        [...spawn.outputs].sort((a, b) => a.path.localeCompare(b.path)),
      );
    }
  });

  it('refuses bytes that are not a protobuf message, naming where', () => {
    expect(() => parseActionResult(Buffer.from([0x12, 0x40, 0x01]))).toThrow(/field 2 runs past the end/);
  });
});
