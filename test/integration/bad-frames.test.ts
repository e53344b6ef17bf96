import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { limits } from '../../shared/limits.js';
import { dumpDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-bad-');
  server = await startServer({ dbPath: dir.file('s.db'), maxPayloadBytes: 256 * 1024, maxStrikes: 5, rateLimitPerSec: 20, rateLimitBurst: 40 });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

async function joined(peerId: string): Promise<RawPeer> {
  const p = await RawPeer.connect(server.wsUrl);
  peers.push(p);
  p.send(helloFor(peerId, flatSchema(3)));
  await p.waitType('assign');
  await server.settle();
  return p;
}

/** Sends a frame and returns the error it provoked, asserting the database did not change. */
async function errorFor(p: RawPeer, send: () => void): Promise<{ code: string; message: string }> {
  const before = dumpDb(dir.file('s.db'));
  const from = p.received.length;
  send();
  const error = await p.waitFor((m) => m.type === 'error', from);
  await server.settle();
  expect(dumpDb(dir.file('s.db'))).toEqual(before);
  return error as { code: string; message: string };
}

describe('bad frames at the socket', () => {
  const cases: { name: string; frame: string | Buffer; binary?: boolean; code: string; message: RegExp }[] = [
    { name: 'not JSON', frame: '{"type":"step.finished",', code: 'BAD_MESSAGE', message: /^not valid JSON/ },
    { name: 'binary frame', frame: Buffer.from([1, 2, 3]), binary: true, code: 'BAD_MESSAGE', message: /binary frames are not accepted/ },
    { name: 'unknown type', frame: '{"type":"launch","cmd":"rm -rf /"}', code: 'BAD_MESSAGE', message: /^launch: type: unknown type/ },
    { name: 'wrong field type', frame: '{"type":"step.finished","leaseId":"l","stepId":"s1","ok":"yes","exitCode":0,"durationMs":1}', code: 'BAD_MESSAGE', message: /^step\.finished: ok: expected boolean/ },
    { name: 'missing field', frame: '{"type":"step.finished","leaseId":"l","stepId":"s1","ok":true,"exitCode":0}', code: 'BAD_MESSAGE', message: /durationMs: is required/ },
    { name: 'extra field', frame: '{"type":"bye","extra":1}', code: 'BAD_MESSAGE', message: /extra: unknown field "extra"/ },
    { name: '__proto__ key', frame: '{"type":"bye","__proto__":{"admin":true}}', code: 'BAD_MESSAGE', message: /__proto__: unknown field/ },
    { name: 'deep nesting', frame: `{"type":"bye","reason":${'['.repeat(20_000)}${']'.repeat(20_000)}}`, code: 'BAD_MESSAGE', message: /reason\[0\]\[0\]\[0\]\[0\]: nested more than 6 levels deep/ },
    { name: 'over-long string', frame: JSON.stringify({ type: 'bye', reason: 'x'.repeat(limits.maxMessageLength + 1) }), code: 'BAD_MESSAGE', message: /reason: must be at most/ },
    { name: 'second hello', frame: JSON.stringify(helloFor('again', flatSchema(3))), code: 'ALREADY_JOINED', message: /already joined as p/ },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.code}, stored state unchanged`, async () => {
      const p = await joined('p');
      const error = await errorFor(p, () => p.sendRaw(c.frame, { binary: c.binary ?? false }));
      expect(error.code).toBe(c.code);
      expect(error.message).toMatch(c.message);
      expect(p.closeCode).toBeNull();
    });
  }

  it('a completion before hello → NOT_JOINED', async () => {
    const p = await RawPeer.connect(server.wsUrl);
    peers.push(p);
    const error = await errorFor(p, () => p.send({ type: 'step.finished', leaseId: 'l', stepId: 's1', ok: true, exitCode: 0, durationMs: 1 }));
    expect(error.code).toBe('NOT_JOINED');
  });

  it('a hello with a tampered schema → SCHEMA_MISMATCH and close 1008', async () => {
    const p = await RawPeer.connect(server.wsUrl);
    peers.push(p);
    const hello = helloFor('p', flatSchema(3));
    const error = await errorFor(p, () => p.send({ ...hello, schema: { ...hello.schema, digest: `sha256:${'0'.repeat(64)}` } }));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(await p.closed()).toBe(1008);
  });

  it('a hello whose schema has a cycle → SCHEMA_MISMATCH naming it', async () => {
    const p = await RawPeer.connect(server.wsUrl);
    peers.push(p);
    const hello = helloFor('p', flatSchema(2));
    const steps = [{ id: 'a', target: '//a', needs: ['b'] }, { id: 'b', target: '//b', needs: ['a'] }];
    const error = await errorFor(p, () => p.send({ ...hello, schema: { ...hello.schema, steps } }));
    expect(error.message).toMatch(/^schema\.steps\[1\]\.needs\[0\]: cycle: a -> b -> a$/);
  });

  it('an unsupported protocol version → UNSUPPORTED_PROTOCOL and close 1002', async () => {
    const p = await RawPeer.connect(server.wsUrl);
    peers.push(p);
    const error = await errorFor(p, () => p.send({ ...helloFor('p', flatSchema(1)), protocol: 2 }));
    expect(error).toMatchObject({ code: 'UNSUPPORTED_PROTOCOL', message: 'this authority speaks protocol 1; the peer asked for 2' });
    expect(await p.closed()).toBe(1002);
  });

  it('a frame of max payload + 1 closes with 1009, state unchanged', async () => {
    const p = await joined('p');
    const before = dumpDb(dir.file('s.db'));
    p.sendRaw('x'.repeat(256 * 1024 + 1));
    expect(await p.closed()).toBe(1009);
    await server.settle();
    // The peer is now disconnected (in grace): only that peer row may change.
    const after = dumpDb(dir.file('s.db'));
    expect({ ...after, peers: [], events: [] }).toEqual({ ...before, peers: [], events: [] });
  });

  it('invalid UTF-8 in a text frame closes with 1007, state unchanged', async () => {
    const p = await joined('p');
    const before = dumpDb(dir.file('s.db'));
    p.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
    expect(await p.closed()).toBe(1007);
    await server.settle();
    const after = dumpDb(dir.file('s.db'));
    expect({ ...after, peers: [], events: [] }).toEqual({ ...before, peers: [], events: [] });
  });

  it('repeated bad frames close with 1008', async () => {
    const p = await joined('p');
    for (let i = 0; i < 10; i++) p.sendRaw('nope');
    expect(await p.closed()).toBe(1008);
    const errors = p.received.filter((m) => m.type === 'error');
    expect(errors).toHaveLength(5);
  });

  it('a flood past the rate limit gets RATE_LIMITED, then close 1008, and no state change', async () => {
    const p = await joined('p');
    const before = dumpDb(dir.file('s.db'));
    for (let i = 0; i < 200; i++) p.send({ type: 'step.finished', leaseId: 'l_nope', stepId: 's1', ok: false, exitCode: 1, durationMs: 1 });
    expect(await p.closed()).toBe(1008);
    expect(p.received.some((m) => m.type === 'error' && m.code === 'RATE_LIMITED')).toBe(true);
    await server.settle();
    const after = dumpDb(dir.file('s.db'));
    expect({ ...after, peers: [], events: [] }).toEqual({ ...before, peers: [], events: [] });
  });

  it('another peer keeps working while one connection misbehaves', async () => {
    const bad = await joined('bad');
    const good = await joined('good');
    for (let i = 0; i < 20; i++) bad.sendRaw('garbage');
    const assign = good.received.find((m) => m.type === 'assign')!;
    if (assign.type !== 'assign') throw new Error('no assign');
    good.send({ type: 'step.finished', leaseId: assign.leaseId, stepId: assign.stepId, ok: true, exitCode: 0, durationMs: 1 });
    await good.waitFor((m) => m.type === 'step.update' && m.stepId === assign.stepId);
    expect(await bad.closed()).toBe(1008);
  });
});
