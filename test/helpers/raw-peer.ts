import WebSocket from 'ws';
import { decodeServerMessage } from '../../shared/frames.js';
import type { PeerMessage, ServerMessage, WireSchema } from '../../shared/protocol.js';
import { helloSchemaDigest, schemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { wireSchema } from './schemas.js';

type Hello = Extract<PeerMessage, { type: 'hello' }>;
/** A hello that carries its schema. */
type FullHello = Hello & { schema: WireSchema };

/** A hello for `schema` with sensible defaults. */
export function helloFor(peerId: string, schema: SchemaDef, over: Partial<Hello> = {}): FullHello {
  return {
    type: 'hello',
    protocol: 1,
    peerId,
    repo: 'https://example.com/acme/mono.git',
    baseRef: 'main',
    patchsets: ['refs/changes/42/1'],
    pipeline: { name: 'check', type: 'independent' },
    isolated: false,
    cacheId: 'cache-1',
    schema: wireSchema(schema),
    ...over,
  };
}

/** A digest-first hello for `schema`: `schemaDigest` (shared/schema-digest.ts `helloSchemaDigest`) instead of the schema. */
export function digestHelloFor(peerId: string, schema: SchemaDef, over: Partial<Hello> = {}): Hello {
  const { schema: _schema, ...rest } = helloFor(peerId, schema);
  return { ...rest, schemaDigest: helloSchemaDigest(schema), ...over };
}

export { schemaDigest };

/**
 * A raw protocol-v1 client over `ws`: sends frames as given, checks every
 * frame it receives against the protocol schema, and lets tests wait for
 * frames by predicate (never by sleeping).
 */
export class RawPeer {
  readonly received: ServerMessage[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private waiters: { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void; from: number }[] = [];
  private closeWaiters: ((code: number) => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('server sent a binary frame');
      const decoded = decodeServerMessage(data.toString());
      if (!decoded.ok) throw new Error(`server sent an invalid frame: ${decoded.problem}`);
      this.received.push(decoded.message);
      const index = this.received.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (index >= w.from && w.match(decoded.message)) {
          w.resolve(decoded.message);
          return false;
        }
        return true;
      });
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.closeWaiters) w(code);
      this.closeWaiters = [];
    });
  }

  static connect(url: string, options: { token?: string } = {}): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: options.token ? { authorization: `Bearer ${options.token}` } : {} });
      const peer = new RawPeer(socket);
      socket.once('open', () => resolve(peer));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(message: PeerMessage | Record<string, unknown>): void {
    this.socket.send(JSON.stringify(message));
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(data, { binary: options.binary ?? false });
  }

  /** The first frame (already received or still to come) matching the predicate, from index `from` on. */
  waitFor<T extends ServerMessage>(match: (m: ServerMessage) => m is T, from?: number, timeoutMs?: number): Promise<T>;
  waitFor(match: (m: ServerMessage) => boolean, from?: number, timeoutMs?: number): Promise<ServerMessage>;
  waitFor(match: (m: ServerMessage) => boolean, from = 0, timeoutMs = 10_000): Promise<ServerMessage> {
    const found = this.received.slice(from).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a frame; got ${JSON.stringify(this.received.map((m) => m.type))}`)), timeoutMs);
      this.waiters.push({ match, from, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  waitType<K extends ServerMessage['type']>(type: K, from = 0): Promise<Extract<ServerMessage, { type: K }>> {
    return this.waitFor((m): m is Extract<ServerMessage, { type: K }> => m.type === type, from);
  }

  /** Resolves with the close code. */
  closed(timeoutMs = 10_000): Promise<number> {
    if (this.closeCode !== null) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for close')), timeoutMs);
      this.closeWaiters.push((code) => (clearTimeout(timer), resolve(code)));
    });
  }

  close(): Promise<number> {
    if (this.closeCode === null) this.socket.close(1000);
    return this.closed();
  }

  /** Drops the TCP connection without a close frame (a crashed peer). */
  kill(): Promise<number> {
    this.socket.terminate();
    return this.closed();
  }
}
