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
      server: ['ws://127.0.0.1:8080/v1/peer'],
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
    expect(https.ok && https.options).toMatchObject({ server: ['wss://auth.example.com/custom/path'], baseSha: 'abcdef1' });
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

  it('takes several authorities, comma-separated or as a list, in order; names the bad entry', () => {
    const commas = parsePeerOptions({ ...base, server: 'ws://a:1, http://b:2/,wss://c' });
    expect(commas.ok && commas.options.server).toEqual(['ws://a:1/v1/peer', 'ws://b:2/v1/peer', 'wss://c/v1/peer']);
    expect(commas.ok && Object.isFrozen(commas.options.server)).toBe(true);
    const list = parsePeerOptions({ ...base, server: ['ws://a:1', 'ws://b:2,ws://c:3'] });
    expect(list.ok && list.options.server).toEqual(['ws://a:1/v1/peer', 'ws://b:2/v1/peer', 'ws://c:3/v1/peer']);
    const bad = parsePeerOptions({ ...base, server: 'ws://a:1,,ftp://b, ws://a:1/v1/peer' }, 'flags');
    expect(!bad.ok && bad.problems).toEqual([
      '--server[1]: must not be empty',
      '--server[2]: must be a ws:// or wss:// URL, got "ftp:"',
      '--server[3]: lists ws://a:1/v1/peer twice',
    ]);
    const none = parsePeerOptions({ ...base, server: [] }, 'flags');
    expect(!none.ok && none.problems).toEqual(['--server: must list at least one authority URL']);
    const many = parsePeerOptions({ ...base, server: Array.from({ length: 9 }, (_, i) => `ws://h${i}:1`) }, 'keys');
    expect(!many.ok && many.problems).toEqual(['server: must list at most 8 authorities, got 9']);
  });
});
