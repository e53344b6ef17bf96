import { describe, expect, it } from 'vitest';
import { parsePeerOptions } from '../../peer/options.js';

const runner = async () => ({ ok: true, exitCode: 0 });
const base = { server: 'ws://127.0.0.1:8080', schema: 'taskshard.json', cacheId: 'bazel-prod', runner };

describe('parsePeerOptions', () => {
  it('fills defaults, adds /v1/peer, maps http(s) to ws(s), and freezes', () => {
    const parsed = parsePeerOptions(base);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const o = parsed.options;
    expect(o).toMatchObject({
      server: 'ws://127.0.0.1:8080/v1/peer',
      patchsets: [],
      pipelineType: 'independent',
      isolated: false,
      universe: true,
      connectTimeoutSec: 10,
      patienceSec: 60,
      strict: false,
    });
    expect(o.onSharedFailure).toBeUndefined();
    expect(Object.isFrozen(o)).toBe(true);
    const https = parsePeerOptions({ ...base, server: 'https://auth.example.com/custom/path', baseSha: 'ABCDEF1' });
    expect(https.ok && https.options).toMatchObject({ server: 'wss://auth.example.com/custom/path', baseSha: 'abcdef1' });
  });

  it('lists every problem, naming flags for the CLI and keys for the library', () => {
    const bad = { ...base, server: 'ftp://x', cacheId: '', baseSha: 'xyz', pipelineType: 'stacked', patchsets: ['ok', 'bad\nref'], runner: 'make', bogus: 1 };
    const flags = parsePeerOptions(bad, 'flags');
    expect(flags.ok).toBe(false);
    if (flags.ok) return;
    expect(flags.problems).toEqual([
      '--server: must be a ws:// or wss:// URL, got "ftp:"',
      '--cache-id: must not be empty',
      '--base-sha: must be a hex commit sha (7 to 64 hex digits)',
      '--patchset[1]: a ref must not contain control characters',
      '--pipeline-type: must be one of "independent", "dependent", got string "stacked"',
      'COMMAND: must be a function (ctx) => Promise<{ ok, exitCode, logTail? }>',
      'bogus: unknown field "bogus"',
    ]);
    const keys = parsePeerOptions(bad, 'keys');
    expect(!keys.ok && keys.problems[1]).toBe('cacheId: must not be empty');
  });

  it('refuses credentials in the URL (the token has its own option)', () => {
    const parsed = parsePeerOptions({ ...base, server: 'ws://user:secret@host:1' }, 'flags');
    expect(!parsed.ok && parsed.problems).toEqual(['--server: must not carry credentials; pass the token with --token or TASKSHARD_TOKEN']);
  });
});
