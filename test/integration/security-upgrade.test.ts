import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type AuthorityApp } from '../../server/app.js';
import { parseServerConfig, type ServerConfigInput } from '../../server/config.js';
import { openStore } from '../../server/store/open-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { TdClient, tdUrl } from '../helpers/td-client.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Issue #12, findings 2 and 4: browser origins and foreign Host names were
 * served on both WebSocket endpoints; connections that never said hello were
 * kept forever, with no cap in all or per address; HTTP bodies that never
 * arrived were held forever. Each refused upgrade is logged and counted.
 */
const peerToken = 'peer-token-0123456789abcdef';
const adminToken = 'admin-token-0123456789abcdef';

interface Started {
  readonly built: AuthorityApp;
  readonly port: number;
  readonly httpUrl: string;
  readonly logs: Record<string, unknown>[];
}

let dir: ReturnType<typeof tempDir> | null = null;
let started: Started | null = null;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await started?.built.close();
  started = null;
  dir?.remove();
  dir = null;
});

/** A real authority whose log lines are kept (JSON objects) for assertions. */
async function start(over: Partial<ServerConfigInput> = {}): Promise<Started> {
  dir = tempDir('taskshard-sec-upgrade-');
  const logs: Record<string, unknown>[] = [];
  const config = parseServerConfig({ host: '127.0.0.1', port: 0, dbPath: dir.file('up.db'), ...over });
  const built = await buildApp(config, {
    store: await openStore(config),
    clock: new FakeClock(),
    logger: { level: 'info', stream: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } },
  });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = built.app.server.address() as AddressInfo;
  started = { built, port, httpUrl: `http://127.0.0.1:${port}`, logs };
  return started;
}

interface Attempt {
  readonly status: number;
  readonly body: string;
  readonly socket: WebSocket | null;
}

/** One upgrade attempt: 101 and the open socket, or the HTTP status and body of the refusal. */
function upgrade(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...(localAddress ? { localAddress } : {}) });
    sockets.push(ws);
    ws.once('open', () => resolve({ status: 101, body: '', socket: ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket: null }));
    });
    ws.once('error', reject);
  });
}

const endpoints = (s: Started): [string, string][] => [
  ['v1', `ws://127.0.0.1:${s.port}/v1/peer`],
  ['task-director', tdUrl(s.httpUrl, 'client_1')],
];

async function refusedCount(s: Started, reason: string): Promise<number> {
  const text = await s.built.metrics.registry.metrics();
  const match = new RegExp(`^taskshard_upgrades_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

describe('browser origins (cross-site WebSocket hijacking)', () => {
  it('refuses a foreign Origin with 403 on both endpoints, with or without a token; CLI peers (no Origin) and the own origin pass', async () => {
    for (const token of [null, peerToken]) {
      const s = await start({ peerToken: token });
      const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      for (const [name, url] of endpoints(s)) {
        const evil = await upgrade(url, { ...auth, origin: 'https://evil.example' });
        expect(evil.status, `${name} evil origin`).toBe(403);
        expect(JSON.parse(evil.body)).toMatchObject({ error: { code: 'FORBIDDEN_ORIGIN' } });
        expect(evil.body).toContain('--allowed-origin');
        expect((await upgrade(url, { ...auth, origin: 'null' })).status, `${name} null origin`).toBe(403);
        expect((await upgrade(url, auth)).status, `${name} no origin`).toBe(101);
        expect((await upgrade(url, { ...auth, origin: `http://127.0.0.1:${s.port}` })).status, `${name} own origin`).toBe(101);
      }
      expect(s.built.app.websocketServer.clients.size).toBe(4);
      expect(await refusedCount(s, 'origin')).toBe(4);
      for (const w of sockets.splice(0)) w.terminate();
      await s.built.close();
      started = null;
      dir!.remove();
      dir = null;
    }
  });

  it('admits an origin listed in --allowed-origin', async () => {
    const s = await start({ allowedOrigins: ['https://dash.example.com'] });
    for (const [, url] of endpoints(s)) {
      expect((await upgrade(url, { origin: 'https://dash.example.com' })).status).toBe(101);
      expect((await upgrade(url, { origin: 'https://dash.example.com.evil.example' })).status).toBe(403);
      expect((await upgrade(url, { origin: 'http://dash.example.com' })).status).toBe(403);
    }
  });

  it('rejects a malformed --allowed-origin at start-up, naming it', () => {
    expect(() => parseServerConfig({ allowedOrigins: ['https://ok.example', 'dash.example.com/path'] })).toThrow(/allowedOrigins\[1\]: must be an origin/);
  });
});

describe('Host names without a peer token (DNS rebinding)', () => {
  it('refuses a Host that is not loopback or the bind address on both endpoints; loopback names pass', async () => {
    const s = await start();
    for (const [name, url] of endpoints(s)) {
      const rebound = await upgrade(url, { host: `evil.example:${s.port}`, origin: `http://evil.example:${s.port}` });
      expect(rebound.status, `${name} rebound`).toBe(403);
      expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: 'FORBIDDEN_HOST' } });
      expect((await upgrade(url, { host: `evil.example:${s.port}` })).status, `${name} foreign host, no origin`).toBe(403);
      expect((await upgrade(url, { host: `localhost:${s.port}` })).status, `${name} localhost`).toBe(101);
      expect((await upgrade(url, { host: `127.0.0.1:${s.port}` })).status, `${name} 127.0.0.1`).toBe(101);
    }
    expect(await refusedCount(s, 'host')).toBe(4);
  });

  it('with a peer token the Host is not restricted (a browser cannot send the token)', async () => {
    const s = await start({ peerToken });
    const [, url] = endpoints(s)[0]!;
    expect((await upgrade(url, { host: `taskshard.example:${s.port}`, authorization: `Bearer ${peerToken}` })).status).toBe(101);
  });
});

describe('refused upgrades are logged and counted', () => {
  it('logs "upgrade refused" with a reason field and counts taskshard_upgrades_refused_total{reason}', async () => {
    const s = await start({ peerToken, maxConnectionsPerAddress: 1 });
    const url = endpoints(s)[0]![1];
    const auth = { authorization: `Bearer ${peerToken}` };
    expect((await upgrade(url)).status).toBe(401);
    expect((await upgrade(url, { ...auth, origin: 'https://evil.example' })).status).toBe(403);
    expect((await upgrade(tdUrl(s.httpUrl, 'bad-id!'), auth)).status).toBe(400);
    // A peer configured with a wrong path: no route there.
    expect((await upgrade(`ws://127.0.0.1:${s.port}/v2/peer`, auth)).status).toBe(404);
    expect((await upgrade(url, auth)).status).toBe(101);
    expect((await upgrade(url, auth)).status).toBe(503);
    // A plain GET of a missing page is not an upgrade: not counted.
    expect((await fetch(`${s.httpUrl}/no-such-page`)).status).toBe(404);
    const refusals = s.logs.filter((l) => l.msg === 'upgrade refused');
    expect(refusals.map((l) => l.reason)).toEqual(['unauthorized', 'origin', 'bad-request', 'not-found', 'address-connections']);
    expect(refusals[3]).toMatchObject({ status: 404, url: '/v2/peer' });
    for (const reason of ['unauthorized', 'origin', 'address-connections', 'bad-request', 'not-found']) expect(await refusedCount(s, reason), reason).toBe(1);
    expect(JSON.stringify(refusals)).not.toContain(peerToken);
  });
});

describe('connection caps', () => {
  it('refuses connections past the per-address cap with 503 naming the cap; a closed one frees its slot', async () => {
    const s = await start({ maxConnectionsPerAddress: 2 });
    const url = endpoints(s)[0]![1];
    const first = await upgrade(url);
    expect((await upgrade(url)).status).toBe(101);
    const refused = await upgrade(url);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'TOO_MANY_CONNECTIONS' } });
    expect(refused.body).toContain('--max-connections-per-address');
    // Another address is not affected.
    expect((await upgrade(url, {}, '127.0.0.2')).status).toBe(101);
    const closed = new Promise((resolve) => s.built.app.websocketServer.clients.forEach((c) => c.once('close', resolve)));
    first.socket!.close();
    await closed;
    await waitFor(async () => (await upgrade(url)).status === 101);
  });

  it('refuses connections past the global cap, whatever their address', async () => {
    const s = await start({ maxConnections: 2 });
    const url = endpoints(s)[1]![1];
    expect((await upgrade(url, {}, '127.0.0.2')).status).toBe(101);
    expect((await upgrade(url, {}, '127.0.0.3')).status).toBe(101);
    const refused = await upgrade(url, {}, '127.0.0.4');
    expect(refused.status).toBe(503);
    expect(refused.body).toContain('maximum of 2 connections');
    expect(await refusedCount(s, 'connections')).toBe(1);
  });
});

describe('hello deadline', () => {
  it('closes a v1 connection that sends no hello with HELLO_TIMEOUT and 1008; a peer that joined stays', async () => {
    const s = await start({ helloTimeoutMs: 300 });
    const url = endpoints(s)[0]![1];
    const member = await RawPeer.connect(url);
    member.send(helloFor('member', flatSchema(1)));
    await member.waitType('welcome');
    const idle = await RawPeer.connect(url);
    expect(await idle.closed()).toBe(1008);
    expect(idle.received).toEqual([expect.objectContaining({ type: 'error', code: 'HELLO_TIMEOUT', retryable: true })]);
    // The member joined before its deadline and is still connected after the idle one's passed.
    expect(member.closeCode).toBeNull();
    await member.close();
  });

  it('closes a Task Director connection that sends no INIT (error frame, then 1008)', async () => {
    const s = await start({ helloTimeoutMs: 300 });
    const idle = await TdClient.connect(tdUrl(s.httpUrl, 'idle_1'), 'idle_1');
    expect(await idle.closed()).toBe(1008);
    expect(idle.errors().map((e) => e.error.code)).toEqual(['HELLO_TIMEOUT']);
    const member = await TdClient.connect(tdUrl(s.httpUrl, 'member_1'), 'member_1');
    member.init({ totalTasks: 1 });
    await member.next(0);
    await member.close();
  });

  it('an idle flood holds no slot for long: past the cap new peers get 503, after the deadline they get in', async () => {
    const s = await start({ helloTimeoutMs: 300, maxConnectionsPerAddress: 5 });
    const url = endpoints(s)[0]![1];
    const idle = await Promise.all(Array.from({ length: 5 }, () => RawPeer.connect(url)));
    expect((await upgrade(url)).status).toBe(503);
    expect(await Promise.all(idle.map((p) => p.closed()))).toEqual([1008, 1008, 1008, 1008, 1008]);
    const peer = await waitFor(async () => {
      try {
        return await RawPeer.connect(url);
      } catch {
        return null;
      }
    });
    peer.send(helloFor('late', flatSchema(1)));
    await peer.waitType('welcome');
    await peer.close();
  });
});

describe('HTTP timeouts', () => {
  it('an HTTP request whose body never arrives is cut off after --request-timeout', async () => {
    const s = await start({ adminToken, requestTimeoutMs: 300 });
    const outcome = await new Promise<string>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: s.port,
          method: 'POST',
          path: '/api/v1/cohorts/c_x/cancel',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'content-length': '100' },
        },
        (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        },
      );
      req.on('error', (err) => resolve(`closed (${(err as NodeJS.ErrnoException).code})`));
      req.on('close', () => resolve('closed'));
      req.write('{"a":');
      setTimeout(() => {
        req.destroy();
        resolve('still held after 5 s');
      }, 5_000).unref();
    });
    expect(outcome).not.toBe('still held after 5 s');
  });
});

describe('HTTP timeouts and long-lived responses', () => {
  it('an idle HTTP connection is closed after --request-timeout, while the event stream stays open', async () => {
    const s = await start({ requestTimeoutMs: 300 });
    let streamEnded = false;
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.port, path: '/api/v1/events' }, resolve);
      req.on('error', reject);
      req.end();
    });
    stream.on('close', () => (streamEnded = true));
    stream.resume();
    // An idle connection opened after the stream is closed by the server's idle timeout...
    const idle = connect({ host: '127.0.0.1', port: s.port });
    await new Promise((resolve) => idle.once('close', resolve));
    // ...and the stream, idle just as long, is still open.
    expect(streamEnded).toBe(false);
    stream.destroy();
  });
});

/** Polls an async condition on events the test cannot subscribe to (a slot freed by a close); bounded. */
async function waitFor<T>(probe: () => Promise<T | null | false>, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== false) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
