import { afterEach, describe, expect, it } from 'vitest';
import type { ServerConfigInput } from '../../server/config.js';
import { limits } from '../../shared/limits.js';
import { dumpDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { TdClient, tdUrl } from '../helpers/td-client.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Issue #12, findings 3 and 6: expensive frames were parsed and validated in
 * full (a 4 MiB frame of 300k unknown keys held the event loop 1.5 s, an INIT
 * with 60k repo_state entries 0.56 s); an error echoed a 1 MB key twice; lone
 * surrogates were accepted in bounded text and merged Task Director schema
 * ids; a v1 peer could take a Task Director client's id. Every RawPeer and
 * TdClient checks each received frame against the protocol's caps.
 */
let dir: ReturnType<typeof tempDir> | null = null;
let server: TestServer | null = null;
const peers: RawPeer[] = [];
const tds: TdClient[] = [];

afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  for (const c of tds.splice(0)) if (c.closeCode === null) await c.kill();
  await server?.close();
  server = null;
  dir?.remove();
  dir = null;
});

async function start(over: Partial<ServerConfigInput> = {}): Promise<TestServer> {
  dir = tempDir('taskshard-sec-frames-');
  server = await startServer({ dbPath: dir.file('f.db'), ...over });
  return server;
}

async function connect(): Promise<RawPeer> {
  const p = await RawPeer.connect(server!.wsUrl);
  peers.push(p);
  return p;
}

async function td(clientId: string): Promise<TdClient> {
  const c = await TdClient.connect(tdUrl(server!.httpUrl, clientId), clientId);
  tds.push(c);
  return c;
}

const errorOf = (p: RawPeer, from = 0) => p.waitFor((m): m is Extract<typeof m, { type: 'error' }> => m.type === 'error', from);

describe('cheap rejection before JSON.parse and zod', () => {
  it('a 4 MiB hello of 300k unknown keys is refused by the shape scan, naming the cap', async () => {
    await start();
    const p = await connect();
    const keys: string[] = [];
    for (let i = 0; i < 300_000; i++) keys.push(`"k${i}":1`);
    const frame = `{"type":"hello",${keys.join(',')}}`;
    expect(frame.length).toBeGreaterThan(3 * 1024 * 1024);
    p.sendRaw(frame);
    const error = await errorOf(p);
    expect(error).toMatchObject({ code: 'BAD_MESSAGE', message: '(root): more than 32 fields' });
    // An oversized first frame that is not a valid hello gets no second try.
    expect(await p.closed()).toBe(1008);
  });

  it('an INIT with 60k repo_state entries is refused by the shape scan and closed', async () => {
    await start();
    const c = await td('big_init');
    const repos: string[] = [];
    for (let i = 0; i < 60_000; i++) repos.push(`"org/r${i}":{"base_ref":"main","patchset":"p${i}"}`);
    c.sendRaw(`{"message_type":1,"repo_state":{${repos.join(',')}},"complex_patchset":false,"cache_id":"1","schema_id":"build","total_tasks":3}`);
    expect(await c.closed()).toBe(1008);
    expect(c.errors().map((e) => e.error.message)).toEqual(['repo_state: more than 32 fields']);
  });

  it('deep nesting, huge arrays and huge strings are refused by the scan with the place named', async () => {
    await start();
    const cases: [string, RegExp][] = [
      [`{"type":"hello","schema":{"steps":[${'{"needs":[],"id":"a"},'.repeat(limits.maxSteps)}{}]}}`, /^schema\.steps: more than 2000 items$/],
      [`{"type":"hello","x":${'['.repeat(50)}${']'.repeat(50)}}`, /^x\[0\]\[0\]\[0\]\[0\]: nested more than 6 levels deep$/],
      [`{"type":"hello","repo":"${'r'.repeat(100_000)}"}`, /^\(root\): a string of 100002 characters; at most \d+ are allowed$/],
    ];
    for (const [frame, message] of cases) {
      const p = await connect();
      p.sendRaw(frame);
      expect((await errorOf(p)).message).toMatch(message);
    }
  });

  it('only the first frame may be larger than limits.maxFrameBytes: a later one closes with 1009 unread', async () => {
    await start();
    const p = await connect();
    p.send(helloFor('p1', flatSchema(2)));
    await p.waitType('assign');
    const before = dumpDb(dir!.file('f.db')).steps;
    const from = p.received.length;
    p.sendRaw(JSON.stringify({ type: 'step.finished', leaseId: 'l_x', stepId: 's1', ok: true, exitCode: 0, durationMs: 1, logTail: 'x'.repeat(limits.maxFrameBytes) }));
    expect(await p.closed()).toBe(1009);
    expect((await errorOf(p, from)).message).toMatch(/only a connection's first frame \(its hello\) may be larger than 65536 bytes/);
    await server!.settle();
    // The frame was never read: the step it named is still leased, not succeeded.
    expect(dumpDb(dir!.file('f.db')).steps).toEqual(before);
  });

  it('a first frame over limits.maxFrameBytes must be a hello', async () => {
    await start();
    const p = await connect();
    p.sendRaw(JSON.stringify({ type: 'bye', x: Array.from({ length: 2000 }, (_, i) => `item-${i}-${'y'.repeat(40)}`) }));
    expect((await errorOf(p)).message).toBe('only the first frame ("hello") may be larger than 65536 bytes');
    expect(await p.closed()).toBe(1008);
  });

  it('the rate limiter charges bytes: a stream of large frames gets RATE_LIMITED before the frame budget runs out', async () => {
    await start({ maxPayloadBytes: 16 * 1024, rateLimitBytesPerSec: 1024, rateLimitBurst: 1000 });
    const p = await connect();
    p.send(helloFor('p1', flatSchema(1)));
    await p.waitType('assign');
    const from = p.received.length;
    for (let i = 0; i < 8; i++) p.send({ type: 'step.finished', leaseId: `l_${i}`, stepId: 's1', ok: false, exitCode: 1, durationMs: 1, logTail: 'z'.repeat(limits.maxLogTailChars) });
    const limited = await p.waitFor((m) => m.type === 'error' && m.code === 'RATE_LIMITED', from);
    expect(limited).toMatchObject({ message: 'more than 1024 bytes per second; slow down' });
  });
});

describe('outgoing text is cut to the protocol caps', () => {
  it('an error never echoes a long unknown key at length', async () => {
    await start();
    for (const keyLength of [20_000, 1_000_000]) {
      const p = await connect();
      p.sendRaw(`{"type":"bye","${'k'.repeat(keyLength)}":1}`);
      const error = await errorOf(p);
      expect(error.code).toBe('BAD_MESSAGE');
      // The key is shown cut to 64 characters in the path and the problem to 300.
      expect(error.message.length).toBeLessThanOrEqual(400);
    }
  });

  it('an HTTP 400 does not echo a long query key at length either', async () => {
    await start();
    const res = await fetch(`${server!.httpUrl}/api/v1/cohorts?${'q'.repeat(10_000)}=1`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/unknown field/);
    expect(body.error.message.length).toBeLessThanOrEqual(400);
  });

  it('a Task Director error frame is cut too', async () => {
    await start();
    const c = await td('long_key');
    c.sendRaw(`{"message_type":3,"schema_id":"build","task_id":"0","task_success":true,"${'k'.repeat(20_000)}":1}`);
    const error = await c.waitFor((f) => 'error' in f);
    expect(JSON.stringify(error).length).toBeLessThan(limits.maxMessageLength);
  });
});

describe('well-formed text only', () => {
  it('bounded text with a lone surrogate is refused (v1 hello)', async () => {
    await start();
    const p = await connect();
    p.send(helloFor('p1', flatSchema(1), { repo: 'https://example.com/a\uD800.git' }));
    const error = await errorOf(p);
    expect(error.message).toMatch(/repo: a repo must be well-formed Unicode \(no lone surrogates\)/);
  });

  it('two Task Director schema ids that differ only in lone surrogates are refused, not merged', async () => {
    await start();
    for (const [clientId, schemaId] of [['a_1', 'build\uD800'], ['b_1', 'build\uDBFF']] as const) {
      const c = await td(clientId);
      c.init({ totalTasks: 2, schemaId });
      expect(await c.closed()).toBe(1008);
      expect(c.errors()[0]!.error.message).toMatch(/schema_id: a schema id must be well-formed Unicode/);
    }
    expect(dumpDb(dir!.file('f.db')).cohorts ?? []).toEqual([]);
  });
});

describe('peer-id namespaces', () => {
  it('a v1 peer with a Task Director client\'s id does not lock it out, and cannot claim the td: prefix', async () => {
    await start();
    const c = await td('shared_id');
    c.init({ totalTasks: 2 });
    await c.next(0);
    const p = await connect();
    p.send(helloFor('shared_id', flatSchema(1)));
    await p.waitType('welcome');
    const impostor = await connect();
    impostor.send(helloFor('td:shared_id', flatSchema(1)));
    expect((await errorOf(impostor)).message).toMatch(/peerId: must not start with "td:"/);
    expect(c.closeCode).toBeNull();
    expect(p.closeCode).toBeNull();
  });
});
