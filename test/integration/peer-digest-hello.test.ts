import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { PeerReport } from '../../peer/report.js';
import { PeerSession, type SessionOutcome } from '../../peer/session.js';
import type { Hello } from '../../shared/protocol.js';
import { helloSchemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { flatSchema, wireSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The taskshard peer's digest-first hello (peer/session.ts, peer/session-frames.ts) over real
 * sockets on 127.0.0.1: against a real authority, the first peer of a schema is asked for it
 * (`UNKNOWN_SCHEMA`) and sends it on the same connection, the next one is welcomed on its digest;
 * against a stand-in that asks again after the full hello, the peer does not loop: it fails open.
 */

interface Run {
  readonly stderr: () => string;
  readonly outcome: Promise<SessionOutcome>;
}

function startSession(url: string, peerId: string, schema: SchemaDef): Run {
  const out = new PassThrough();
  const err = new PassThrough();
  let stderr = '';
  out.resume();
  err.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const session = new PeerSession({
    servers: [url],
    token: null,
    hello: {
      type: 'hello',
      protocol: 1,
      peerId,
      repo: 'https://example.com/r.git',
      baseRef: 'main',
      patchsets: [],
      pipeline: { name: 'default', type: 'independent' },
      isolated: false,
      cacheId: 'cache',
      coalescedUpdates: true,
      targetedUpdates: true,
      schema: wireSchema(schema),
    },
    schema,
    onSharedFailure: 'fail',
    connectTimeoutMs: 10_000,
    patienceMs: 10_000,
    backoff: { baseMs: 60_000, capMs: 60_000 },
    random: () => 0,
    runner: async () => ({ ok: true, exitCode: 0 }),
    report: new PeerReport(out, err, null, false),
    now: () => performance.now(),
  });
  return { stderr: () => stderr, outcome: session.run() };
}

describe('the peer against a real authority', () => {
  let dir: ReturnType<typeof tempDir>;
  let server: TestServer;
  beforeEach(async () => {
    dir = tempDir('taskshard-peer-digest-');
    server = await startServer({ dbPath: dir.file('s.db') });
  });
  afterEach(async () => {
    await server.close();
    dir.remove();
  });

  it('the first peer of a schema sends it when asked (same connection); the next is welcomed on the digest alone', async () => {
    const schema = flatSchema(1, `peer-digest-${process.pid}`);
    const first = startSession(server.wsUrl, 'p1', schema);
    expect((await first.outcome).kind).toBe('complete');
    expect(first.stderr()).toContain(`the authority does not hold schema ${schema.id} (${helloSchemaDigest(schema)}); sending it`);
    expect(first.stderr()).not.toMatch(/connection to the authority .* ended/);
    const second = startSession(server.wsUrl, 'p2', { ...schema });
    expect((await second.outcome).kind).toBe('complete');
    expect(second.stderr()).not.toContain('does not hold schema');
    expect(second.stderr()).not.toContain('UNKNOWN_SCHEMA');
  });
});

/** A stand-in authority that answers every hello with UNKNOWN_SCHEMA, recording them. */
class AlwaysUnknown {
  readonly hellos: Hello[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets: WebSocket[] = [];
  private readonly http: Server = createServer((_req, res) => res.writeHead(404).end());

  constructor() {
    this.http.on('upgrade', (req, socket: Socket, head) => {
      socket.on('error', () => undefined);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.push(ws);
        ws.on('error', () => undefined);
        ws.on('message', (data) => {
          const frame = JSON.parse(String(data)) as Hello;
          if (frame.type !== 'hello') return;
          this.hellos.push(frame);
          ws.send(JSON.stringify({ type: 'error', code: 'UNKNOWN_SCHEMA', message: 'no such schema', retryable: true }));
        });
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}/v1/peer`;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.http.closeAllConnections();
    if (this.http.listening) await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.wss.close();
  }
}

describe('the peer against an authority that asks for the schema twice', () => {
  const stand: AlwaysUnknown[] = [];
  afterEach(async () => {
    await Promise.all(stand.splice(0).map((s) => s.stop()));
  });

  it('sends the full hello once, then fails open as untrusted (no loop)', async () => {
    const fake = new AlwaysUnknown();
    stand.push(fake);
    const schema = flatSchema(2, 'twice');
    const run = startSession(await fake.listen(), 'p1', schema);
    const outcome = await run.outcome;
    expect(outcome).toMatchObject({ kind: 'fail-open', cause: 'untrusted' });
    expect(outcome.kind === 'fail-open' && outcome.detail).toContain('it asked for the schema (UNKNOWN_SCHEMA) after it was sent');
    expect(fake.hellos.map((h) => (h.schema === undefined ? 'digest' : 'full'))).toEqual(['digest', 'full']);
    expect(fake.hellos[0]!.schemaDigest).toBe(helloSchemaDigest(schema));
  });
});
