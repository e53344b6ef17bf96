import { describe, expect, it } from 'vitest';
import { decodePeerMessage, decodeServerMessage } from '../../shared/frames.js';
import { v1FrameShape } from '../../shared/frame-shape.js';
import { limits } from '../../shared/limits.js';
import { peerMessageSchema, serverMessageSchema, type PeerMessage, type ServerMessage } from '../../shared/protocol.js';
import { dagSchema, wireSchema } from '../helpers/schemas.js';

const hello: PeerMessage = {
  type: 'hello',
  protocol: 1,
  peerId: 'gha-123-1-build',
  resumeToken: 'rt_abc',
  client: { name: 'taskshard', version: '0.1.0' },
  repo: 'https://github.com/acme/mono.git',
  baseRef: 'main',
  baseSha: 'a'.repeat(40),
  changeRef: 'refs/pull/7/head',
  patchsets: ['refs/pull/7/head'],
  pipeline: { name: 'check', type: 'independent' },
  isolated: false,
  cacheId: 'bazel-remote-1',
  schema: wireSchema(dagSchema({ a: [], b: ['a'] }, { a: 30 })),
  currentStep: { stepId: 'a', leaseId: 'l_1' },
  coalescedUpdates: true,
};

const peerMessages: PeerMessage[] = [
  hello,
  // A first hello: no resume token yet, the registration token this peer process picked (32 bytes, base64url).
  { ...hello, resumeToken: undefined, currentStep: undefined, registrationToken: 'Q2hvb3NlbiBieSB0aGUgcGVlciwgMzIgYnl0ZXMgISE_-w' },
  { type: 'step.finished', leaseId: 'l_1', stepId: 'a', ok: false, exitCode: 3, durationMs: 1200, logTail: 'error: boom' },
  { type: 'step.finished', leaseId: 'l_2', stepId: 'b', ok: true, exitCode: null, durationMs: 0 },
  { type: 'bye', reason: 'done' },
  { type: 'bye' },
];

const serverMessages: ServerMessage[] = [
  { type: 'welcome', protocol: 1, peerId: 'p1', resumeToken: 'rt_1', resumed: false, cohort: { id: 'c_1', peers: 3, steps: 6, resolved: 1, succeeded: [{ stepId: 'a', peerId: 'p2', fromMemo: false }] }, pingIntervalMs: 15000 },
  { type: 'assign', cohortId: 'c_1', stepId: 'a', leaseId: 'l_1', attempt: 1, backup: false },
  { type: 'wait', cohortId: 'c_1', running: [{ stepId: 'a', peerId: 'p2' }], unresolved: 4 },
  { type: 'step.update', cohortId: 'c_1', stepId: 'a', state: 'succeeded', peerId: 'p2', fromMemo: false, durationMs: 1000 },
  { type: 'step.update', cohortId: 'c_1', stepId: 'b', state: 'failed', peerId: 'p2', fromMemo: false, exitCode: 2, logTail: 'x', reason: 'failed twice' },
  // Batched successes, only to peers whose hello said coalescedUpdates.
  { type: 'step.updates', cohortId: 'c_1', succeeded: [{ stepId: 'a', peerId: 'p2', fromMemo: false, durationMs: 1000 }, { stepId: 'e', peerId: null, fromMemo: true }] },
  { type: 'assign', cohortId: 'c_1', stepId: 'f', leaseId: 'l_2', attempt: 1, backup: false, succeeded: [{ stepId: 'a', peerId: 'p2', fromMemo: false }] },
  { type: 'abort', stepId: 'a', leaseId: 'l_1', reason: 'superseded' },
  {
    type: 'complete',
    cohortId: 'c_1',
    outcome: 'failed',
    summary: { builtHere: ['a'], builtByOthers: [{ stepId: 'c', peerId: 'p3' }], fromMemo: ['d'], failed: [{ stepId: 'b', peerId: 'p2', exitCode: 2, reason: 'exit 2' }], savedSec: 12.5 },
  },
  { type: 'error', code: 'STALE_LEASE', message: 'lease l_1 was lost', retryable: false, leaseId: 'l_1' },
];

describe('protocol v1 round-trips', () => {
  for (const message of peerMessages) {
    it(`peer -> server ${message.type}`, () => {
      const decoded = decodePeerMessage(JSON.stringify(message));
      expect(decoded).toEqual({ ok: true, message });
    });
  }
  for (const message of serverMessages) {
    it(`server -> peer ${message.type}`, () => {
      const decoded = decodeServerMessage(JSON.stringify(message));
      expect(decoded).toEqual({ ok: true, message });
    });
  }
  it('the frame shape scan lets through a message with every field its schema defines', () => {
    // A hello with every optional field set (a resuming peer with labels, a cohort key, a CI link) once passed the cap of 16.
    const widest = Math.max(...[...peerMessageSchema.options, ...serverMessageSchema.options].map((o) => Object.keys(o.shape).length));
    expect(widest).toBeLessThanOrEqual(v1FrameShape.maxKeysPerObject);
    const full = { ...hello, cohortKey: 'k', labels: ['os:linux'], ciJobUrl: 'https://ci.example.com/job/1', registrationToken: 'a'.repeat(43) };
    expect(Object.keys(full).length).toBeGreaterThan(16);
    expect(decodePeerMessage(JSON.stringify(full))).toEqual({ ok: true, message: full });
  });
  it('each direction covers every message type of DESIGN §8', () => {
    expect(new Set(peerMessages.map((m) => m.type))).toEqual(new Set(peerMessageSchema.options.map((o) => o.shape.type.value)));
    expect(new Set(serverMessages.map((m) => m.type))).toEqual(new Set(serverMessageSchema.options.map((o) => o.shape.type.value)));
  });
});

describe('bad frames are rejected with a message naming the field', () => {
  const finished = { type: 'step.finished', leaseId: 'l_1', stepId: 'a', ok: true, exitCode: 0, durationMs: 5 };
  const cases: { name: string; frame: string; expected: RegExp }[] = [
    { name: 'not JSON', frame: '{"type":', expected: /^not valid JSON/ },
    { name: 'not an object', frame: '[1]', expected: /must be a JSON object with a "type"/ },
    { name: 'a bare string', frame: '"hello"', expected: /must be a JSON object/ },
    { name: 'unknown type', frame: '{"type":"launch"}', expected: /^launch: type: unknown type string "launch" \(one of "hello", "step.finished", "bye"\)$/ },
    { name: 'missing type', frame: '{"peerId":"x"}', expected: /type: unknown type nothing/ },
    { name: 'wrong type of field', frame: JSON.stringify({ ...finished, exitCode: 'zero' }), expected: /^step\.finished: exitCode: expected number, got string "zero"$/ },
    { name: 'missing field', frame: JSON.stringify({ ...finished, leaseId: undefined }), expected: /^step\.finished: leaseId: is required$/ },
    { name: 'extra field', frame: JSON.stringify({ ...finished, command: 'rm -rf /' }), expected: /^step\.finished: command: unknown field "command"$/ },
    { name: '__proto__ key', frame: '{"type":"bye","__proto__":{"polluted":true}}', expected: /^bye: __proto__: unknown field "__proto__"$/ },
    { name: 'over-long log tail', frame: JSON.stringify({ ...finished, logTail: 'x'.repeat(limits.maxLogTailChars + 1) }), expected: /^step\.finished: logTail: must be at most 4096 characters$/ },
    { name: 'over-long peer id', frame: JSON.stringify({ ...hello, peerId: 'p'.repeat(limits.maxPeerIdLength + 1) }), expected: /^hello: peerId: must be at most 128 characters$/ },
    { name: 'too many patchsets', frame: JSON.stringify({ ...hello, patchsets: Array.from({ length: limits.maxPatchsets + 1 }, (_, i) => `r${i}`) }), expected: /^hello: patchsets: / },
    { name: 'bad pipeline type', frame: JSON.stringify({ ...hello, pipeline: { name: 'gate', type: 'stacked' } }), expected: /^hello: pipeline\.type: must be one of "independent", "dependent", got string "stacked"$/ },
    { name: 'short registration token', frame: JSON.stringify({ ...hello, registrationToken: 'abc' }), expected: /^hello: registrationToken: must be 43 to 128 base64url characters/ },
    { name: 'registration token with other characters', frame: JSON.stringify({ ...hello, registrationToken: `${'a'.repeat(43)}=` }), expected: /^hello: registrationToken: must be 43 to 128 base64url characters/ },
    { name: 'bad sha', frame: JSON.stringify({ ...hello, baseSha: 'not-a-sha' }), expected: /^hello: baseSha: must be a hex commit sha/ },
    { name: 'negative duration', frame: JSON.stringify({ ...finished, durationMs: -1 }), expected: /durationMs: / },
    { name: 'fractional exit code', frame: JSON.stringify({ ...finished, exitCode: 1.5 }), expected: /exitCode: / },
    { name: 'deeply nested value', frame: `{"type":"bye","reason":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, expected: /^reason\[0\]\[0\]\[0\]\[0\]: nested more than 6 levels deep$/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decoded = decodePeerMessage(c.frame);
      expect(decoded.ok).toBe(false);
      if (decoded.ok) return;
      expect(decoded.problem).toMatch(c.expected);
    });
  }

  it('the server side rejects frames a peer must not trust', () => {
    const decoded = decodeServerMessage(JSON.stringify({ type: 'assign', cohortId: 'c', stepId: '../../etc', leaseId: 'l', attempt: 1, backup: false }));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.problem).toMatch(/^assign: stepId: must use/);
  });

  it('does not pollute prototypes', () => {
    decodePeerMessage('{"type":"bye","__proto__":{"polluted":true}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
