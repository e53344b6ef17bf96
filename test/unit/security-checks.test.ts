import { describe, expect, it } from 'vitest';
import { parseServerConfig } from '../../server/config.js';
import { ConnectionLimits } from '../../server/http/connection-limits.js';
import { checkBrowserOrigin, hostName } from '../../server/http/upgrade-guard.js';
import { TokenBucket } from '../../server/http/rate-limiter.js';
import { frameShapeProblem, v1FrameShape } from '../../shared/frame-shape.js';
import { decodePeerMessage } from '../../shared/frames.js';
import { capText } from '../../shared/text-caps.js';
import { helloFor } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';

describe('frame shape scan', () => {
  const caps = { maxDepth: 3, maxKeysPerObject: 2, maxItemsPerArray: 3, maxValues: 6, maxStringChars: 10 };

  it('passes frames within every cap, whatever their strings contain', () => {
    for (const text of ['{}', '{"a":[1,2,3]}', '{"a":"{[:,\\"]}","b":{"c":[]}}', '{"a":[[],[]]}', ' { "a" : [ true , null ] } ']) {
      expect(frameShapeProblem(text, caps), text).toBeNull();
    }
  });

  it('names the place and the cap passed', () => {
    expect(frameShapeProblem('{"a":1,"b":2,"c":3}', caps)).toBe('(root): more than 2 fields');
    expect(frameShapeProblem('{"a":{"x":1,"y":2,"z":3}}', caps)).toBe('a: more than 2 fields');
    expect(frameShapeProblem('{"a":[1,2,3,4]}', caps)).toBe('a: more than 3 items');
    expect(frameShapeProblem('{"a":[[1],[[2]]]}', caps)).toBe('a[1]: nested more than 3 levels deep');
    expect(frameShapeProblem('{"a":"12345678901"}', caps)).toBe('(root): a string of 13 characters; at most 10 are allowed');
    expect(frameShapeProblem('{"a":[1,2,3],"b":[3,4]}', caps)).toBe('more than 6 values in one frame');
  });

  it('counts escaped quotes as part of the string', () => {
    expect(frameShapeProblem('{"a":"\\"\\"\\""}', caps)).toBeNull();
    expect(frameShapeProblem('{"a":"\\\\","b":1,"c":2}', caps)).toBe('(root): more than 2 fields');
  });

  it('passes the largest valid hello (2000 steps, 64 needs each)', () => {
    const schema = flatSchema(2000);
    const hello = helloFor('p', schema);
    const needs = Array.from({ length: 64 }, (_, i) => `s${i + 1}`);
    const wide = { ...hello, schema: { ...hello.schema, steps: hello.schema.steps.map((s, i) => ({ ...s, needs: i >= 64 ? needs : [], estimateSec: 1 })) } };
    expect(frameShapeProblem(JSON.stringify(wide), v1FrameShape)).toBeNull();
  });
});

describe('decoding', () => {
  it('replaces lone surrogates in free text (a log tail cut mid-pair) instead of refusing it', () => {
    const decoded = decodePeerMessage(JSON.stringify({ type: 'step.finished', leaseId: 'l_1', stepId: 's1', ok: false, exitCode: 1, durationMs: 1, logTail: '\uDE00tail' }));
    expect(decoded).toMatchObject({ ok: true, message: { logTail: '\uFFFDtail' } });
  });

  it('cuts text without splitting a surrogate pair', () => {
    expect(capText('abc', 3)).toBe('abc');
    expect(capText('abcd', 3)).toBe('ab…');
    expect(capText('a\uD83D\uDE00bc', 3)).toBe('a…');
  });
});

describe('token bucket', () => {
  it('charges a cost and refuses without taking when too few tokens are left', () => {
    const bucket = new TokenBucket(100, 1000, 0);
    expect(bucket.take(0, 900)).toBe(true);
    expect(bucket.take(0, 200)).toBe(false);
    expect(bucket.take(0, 100)).toBe(true);
    expect(bucket.take(1000, 100)).toBe(true);
    expect(bucket.take(1000, 1)).toBe(false);
  });
});

describe('connection limits', () => {
  it('caps in all and per address, and releases each admitted connection once', () => {
    const limits = new ConnectionLimits(3, 2);
    expect(limits.tryAdmit('a')).toBeNull();
    expect(limits.tryAdmit('a')).toBeNull();
    expect(limits.tryAdmit('a')).toBe('address-connections');
    expect(limits.tryAdmit('b')).toBeNull();
    expect(limits.tryAdmit('c')).toBe('connections');
    limits.release('a');
    expect(limits.openFrom('a')).toBe(1);
    expect(limits.tryAdmit('c')).toBeNull();
    expect(() => new ConnectionLimits(1, 1).release('x')).toThrow(/never admitted/);
  });
});

describe('browser origin and Host checks', () => {
  const noToken = parseServerConfig({});
  const withToken = parseServerConfig({ peerToken: 'peer-token-0123456789abcdef', allowedOrigins: ['https://dash.example.com'] });
  const wildcard = parseServerConfig({ host: '0.0.0.0', insecureBind: true });

  it('parses Host headers strictly', () => {
    expect(hostName('127.0.0.1:8080')).toBe('127.0.0.1');
    expect(hostName('[::1]:8080')).toBe('::1');
    expect(hostName('LOCALHOST')).toBe('localhost');
    expect(hostName('evil.example/x')).toBeNull();
    expect(hostName('user@evil.example')).toBeNull();
  });

  it('without an Origin only the Host matters, and only without a token', () => {
    expect(checkBrowserOrigin({ host: 'localhost:8080' }, noToken)).toBeNull();
    expect(checkBrowserOrigin({ host: 'evil.example:8080' }, noToken)?.reason).toBe('host');
    expect(checkBrowserOrigin({}, noToken)?.reason).toBe('host');
    expect(checkBrowserOrigin({ host: 'taskshard.example' }, withToken)).toBeNull();
    expect(checkBrowserOrigin({ host: '10.1.2.3:8080' }, wildcard)).toBeNull();
    expect(checkBrowserOrigin({ host: 'rebound.example:8080' }, wildcard)?.reason).toBe('host');
  });

  it('an Origin must be the own one or listed', () => {
    expect(checkBrowserOrigin({ host: 'localhost:8080', origin: 'http://localhost:8080' }, noToken)).toBeNull();
    expect(checkBrowserOrigin({ host: 'localhost:8080', origin: 'http://localhost:8081' }, noToken)?.reason).toBe('origin');
    expect(checkBrowserOrigin({ host: 'ci.example', origin: 'https://dash.example.com' }, withToken)).toBeNull();
    expect(checkBrowserOrigin({ host: 'ci.example', origin: 'https://DASH.example.com:443' }, withToken)).toBeNull();
    expect(checkBrowserOrigin({ host: 'ci.example', origin: 'file://' }, withToken)?.reason).toBe('origin');
    const refusal = checkBrowserOrigin({ host: 'ci.example', origin: `https://${'e'.repeat(5000)}.example` }, withToken);
    expect(refusal?.message.length).toBeLessThan(300);
  });
});
