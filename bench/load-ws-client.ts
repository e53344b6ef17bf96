import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

/**
 * The load generators' WebSocket client. The benchmark measures the servers, but on a
 * 2-core machine its load client shares the CPUs with them: with `ws` the Task Director
 * client spent about as much CPU per task as the authority (90-140 µs against 120-200 µs
 * in the same runs, issue #17), so it bounded the rate it measured. The lean client is
 * RFC 6455 on a bare `net.Socket` for what a load client needs: the upgrade (with its
 * `Sec-WebSocket-Accept` check), masked text frames out, text frames in (fragmented or
 * not), ping answered with pong, the closing handshake. It has no extensions (the servers
 * are asked for none), no binary frames, no backpressure buffering beyond the socket's.
 * Every server (the echo, the authority, the original) is driven by the same client.
 */

export const loadClients = ['lean', 'ws'] as const;
export type LoadClient = (typeof loadClients)[number];

/** What a load generator does with a connection, whichever client made it. */
export interface LoadSocket {
  send(text: string): void;
  /** Text frames, in order; frames that arrived before the handler was set are handed to it at once. */
  onText(handler: (text: string) => void): void;
  /** The connection ended (closing handshake, error or reset); called once per handler. */
  onClose(handler: () => void): void;
  readonly closed: boolean;
  /** Starts the closing handshake with `code`. */
  close(code: number): void;
  /** Ends the TCP connection at once. */
  terminate(): void;
}

export interface ConnectOptions {
  readonly localAddress: string;
  readonly handshakeTimeoutMs: number;
}

export function openLoadSocket(client: LoadClient, url: string, options: ConnectOptions): Promise<LoadSocket> {
  return client === 'lean' ? openLean(url, options) : openWs(url, options);
}

// ---- ws ------------------------------------------------------------------------------

function openWs(url: string, options: ConnectOptions): Promise<LoadSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress: options.localAddress, perMessageDeflate: false, handshakeTimeout: options.handshakeTimeoutMs });
    socket.once('open', () =>
      resolve({
        send: (text) => socket.send(text),
        onText: (handler) => socket.on('message', (data: Buffer) => handler(data.toString())),
        onClose: (handler) => socket.once('close', handler),
        get closed() {
          return socket.readyState === WebSocket.CLOSED;
        },
        close: (code) => socket.close(code),
        terminate: () => socket.terminate(),
      }),
    );
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

// ---- frames (no sockets: test/unit/load-ws-client.test.ts) ---------------------------

export const opcodes = Object.freeze({ continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 });

/** What a {@link FrameReader} finds in the server's bytes. */
export interface FrameSink {
  text(text: string): void;
  ping(payload: Buffer): void;
  /** A close frame: its status code (null when it has none) and reason. */
  closeFrame(code: number | null, reason: string): void;
}

/**
 * Server-to-client frames from a byte stream (RFC 6455 §5.2): unmasked, FIN and
 * continuation, 7/16/64-bit lengths; a frame split over chunks waits for the rest.
 * Throws on what a server must not send (a masked frame, RSV bits, an unknown opcode,
 * a fragmented control frame, a continuation without a start) and on binary frames,
 * which no server here sends.
 */
export class FrameReader {
  private pending: Buffer | null = null;
  private fragments: Buffer[] | null = null;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxPayloadBytes = 64 * 1024 * 1024,
  ) {}

  push(chunk: Buffer): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let at = 0;
    for (;;) {
      const left = buf.length - at;
      if (left < 2) break;
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      if ((b1 & 0x80) !== 0) throw new Error('the server sent a masked frame (RFC 6455 §5.1)');
      if ((b0 & 0x70) !== 0) throw new Error('the server set RSV bits, but no extension was negotiated');
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (left < 4) break;
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (left < 10) break;
        if (buf.readUInt32BE(at + 2) !== 0) throw new Error('the server sent a frame over 4 GiB');
        length = buf.readUInt32BE(at + 6);
        header = 10;
      }
      if (length > this.maxPayloadBytes) throw new Error(`the server sent a frame of ${length} bytes (limit ${this.maxPayloadBytes})`);
      if (left < header + length) break;
      const start = at + header;
      at = start + length;
      this.frame((b0 & 0x80) !== 0, b0 & 0x0f, buf, start, at);
    }
    // The rest of a split frame; copied, so the chunk it came in is not held.
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }

  private frame(fin: boolean, opcode: number, buf: Buffer, start: number, end: number): void {
    switch (opcode) {
      case opcodes.text:
        if (this.fragments !== null) throw new Error('the server started a text frame inside a fragmented message');
        if (fin) return this.sink.text(buf.toString('utf8', start, end));
        this.fragments = [Buffer.from(buf.subarray(start, end))];
        return;
      case opcodes.continuation: {
        if (this.fragments === null) throw new Error('the server sent a continuation frame with no message to continue');
        this.fragments.push(Buffer.from(buf.subarray(start, end)));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        this.fragments = null;
        return this.sink.text(whole.toString('utf8'));
      }
      case opcodes.close:
      case opcodes.ping:
      case opcodes.pong:
        if (!fin || end - start > 125) throw new Error(`the server sent a control frame (opcode ${opcode}) fragmented or over 125 bytes`);
        if (opcode === opcodes.ping) return this.sink.ping(Buffer.from(buf.subarray(start, end)));
        if (opcode === opcodes.close) {
          const code = end - start >= 2 ? buf.readUInt16BE(start) : null;
          return this.sink.closeFrame(code, end - start > 2 ? buf.toString('utf8', start + 2, end) : '');
        }
        return;
      case opcodes.binary:
        throw new Error('the server sent a binary frame; the load client expects text');
      default:
        throw new Error(`the server sent a frame with reserved opcode ${opcode}`);
    }
  }
}

/** Masking keys, 4 bytes each, drawn from a pool filled with random bytes 1,024 keys at a time. */
const maskPool = Buffer.alloc(4096);
let maskAt = maskPool.length;

function nextMaskAt(): number {
  if (maskAt === maskPool.length) {
    randomFillSync(maskPool);
    maskAt = 0;
  }
  const at = maskAt;
  maskAt += 4;
  return at;
}

/**
 * One client-to-server frame (RFC 6455 §5.2, FIN set, masked with a fresh random key).
 * `payload` is a string for a text frame (written as UTF-8) or bytes.
 */
export function encodeClientFrame(opcode: number, payload: string | Buffer): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const header = length < 126 ? 6 : length < 65_536 ? 8 : 14;
  const out = Buffer.allocUnsafe(header + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = 0x80 | length;
  } else if (length < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(length, 6);
  }
  const keyAt = header - 4;
  maskPool.copy(out, keyAt, nextMaskAt(), maskAt);
  if (typeof payload === 'string') out.write(payload, header, 'utf8');
  else payload.copy(out, header);
  const k0 = out[keyAt]!;
  const k1 = out[keyAt + 1]!;
  const k2 = out[keyAt + 2]!;
  const k3 = out[keyAt + 3]!;
  let i = header;
  const end = header + length;
  for (; i + 3 < end; i += 4) {
    out[i] = out[i]! ^ k0;
    out[i + 1] = out[i + 1]! ^ k1;
    out[i + 2] = out[i + 2]! ^ k2;
    out[i + 3] = out[i + 3]! ^ k3;
  }
  for (let j = 0; i < end; i++, j++) out[i] = out[i]! ^ (j === 0 ? k0 : j === 1 ? k1 : k2);
  return out;
}

const acceptGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The `Sec-WebSocket-Accept` a server must answer to `key` (RFC 6455 §4.2.2). */
export function expectedAccept(key: string): string {
  return createHash('sha1').update(key + acceptGuid).digest('base64');
}

/**
 * The server's answer to the upgrade, once its head is complete: null while it is not,
 * else the bytes after it (the first frames) or why it is refused.
 */
export function readUpgradeAnswer(head: Buffer, key: string): null | { readonly ok: true; readonly rest: Buffer } | { readonly ok: false; readonly problem: string } {
  const end = head.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = head.toString('latin1', 0, end).split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})\b/.exec(lines[0]!);
  if (!status) return { ok: false, problem: `not an HTTP/1.1 answer: ${JSON.stringify(lines[0]!.slice(0, 80))}` };
  if (status[1] !== '101') return { ok: false, problem: `HTTP ${status[1]}` };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return { ok: false, problem: 'the 101 answer has no "Upgrade: websocket"' };
  if (headers.get('sec-websocket-accept') !== expectedAccept(key)) return { ok: false, problem: 'the 101 answer has a wrong Sec-WebSocket-Accept' };
  if (headers.has('sec-websocket-extensions')) return { ok: false, problem: 'the server chose an extension the client did not offer' };
  return { ok: true, rest: head.subarray(end + 4) };
}

// ---- the lean socket -------------------------------------------------------------------

class LeanSocket implements LoadSocket, FrameSink {
  private textHandler: ((text: string) => void) | null = null;
  private early: string[] = [];
  private readonly closeHandlers: (() => void)[] = [];
  private readonly reader = new FrameReader(this);
  private closeSent = false;
  closed = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.once('close', () => {
      this.closed = true;
      for (const handler of this.closeHandlers) handler();
    });
    // A reset or a write after the peer closed: the 'close' that follows ends the connection.
    socket.on('error', () => undefined);
  }

  /** Bytes from the server (the first ones may have come with the upgrade answer). */
  received(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (err) {
      process.stderr.write(`load client: ${(err as Error).message}; closing the connection\n`);
      this.socket.destroy();
    }
  }

  text(text: string): void {
    if (this.textHandler !== null) this.textHandler(text);
    else this.early.push(text);
  }

  ping(payload: Buffer): void {
    if (!this.closeSent) this.socket.write(encodeClientFrame(opcodes.pong, payload));
  }

  closeFrame(code: number | null): void {
    // The server's close: answered with the same code (RFC 6455 §5.5.1); the server then ends TCP.
    if (!this.closeSent) this.sendClose(code);
    this.socket.end();
  }

  send(text: string): void {
    if (this.closed || this.closeSent) return;
    this.socket.write(encodeClientFrame(opcodes.text, text));
  }

  onText(handler: (text: string) => void): void {
    this.textHandler = handler;
    const early = this.early;
    this.early = [];
    for (const text of early) handler(text);
  }

  onClose(handler: () => void): void {
    this.closeHandlers.push(handler);
  }

  close(code: number): void {
    if (this.closed || this.closeSent) return;
    this.sendClose(code);
  }

  terminate(): void {
    this.socket.destroy();
  }

  private sendClose(code: number | null): void {
    this.closeSent = true;
    const payload = Buffer.alloc(code === null ? 0 : 2);
    if (code !== null) payload.writeUInt16BE(code, 0);
    this.socket.write(encodeClientFrame(opcodes.close, payload));
  }
}

function openLean(url: string, options: ConnectOptions): Promise<LoadSocket> {
  const u = new URL(url);
  if (u.protocol !== 'ws:') return Promise.reject(new Error(`the lean load client speaks ws:// only, not ${u.protocol}`));
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = connect({ host: u.hostname, port: Number(u.port || 80), localAddress: options.localAddress });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no upgrade answer within ${options.handshakeTimeoutMs} ms`)), options.handshakeTimeoutMs);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const answer = readUpgradeAnswer(head, key);
      if (answer === null) {
        if (head.length > 16_384) fail(new Error('the upgrade answer is over 16 KiB'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onEarlyClose);
      clearTimeout(timer);
      if (!answer.ok) return fail(new Error(answer.problem));
      const lean = new LeanSocket(socket);
      if (answer.rest.length > 0) lean.received(Buffer.from(answer.rest));
      resolve(lean);
    };
    const onEarlyClose = (): void => fail(new Error('the server closed the connection during the upgrade'));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onEarlyClose);
    socket.once('connect', () => {
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  });
}
