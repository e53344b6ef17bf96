import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeClientFrame, expectedAccept, FrameReader, opcodes, openLoadSocket, readUpgradeAnswer, type FrameSink, type LoadSocket } from '../../bench/load-ws-client.js';

/** The benchmark's lean WebSocket client: its frames without sockets, then against a real `ws` server on loopback. */

/** Unmasks a client frame: [opcode, fin, payload]. */
function decodeClientFrame(frame: Buffer): { opcode: number; fin: boolean; payload: Buffer } {
  expect(frame[1]! & 0x80, 'client frames are masked').toBe(0x80);
  let length = frame[1]! & 0x7f;
  let at = 2;
  if (length === 126) {
    length = frame.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    length = frame.readUInt32BE(6);
    at = 10;
  }
  const key = frame.subarray(at, at + 4);
  const payload = Buffer.from(frame.subarray(at + 4));
  expect(payload.length).toBe(length);
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i % 4]!;
  return { opcode: frame[0]! & 0x0f, fin: (frame[0]! & 0x80) !== 0, payload };
}

/** A server frame (unmasked). */
function serverFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = body.length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, body.length]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 126, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([header, body]);
}

function collector(): FrameSink & { texts: string[]; pings: string[]; closes: [number | null, string][] } {
  const sink = {
    texts: [] as string[],
    pings: [] as string[],
    closes: [] as [number | null, string][],
    text: (t: string) => void sink.texts.push(t),
    ping: (p: Buffer) => void sink.pings.push(p.toString()),
    closeFrame: (code: number | null, reason: string) => void sink.closes.push([code, reason]),
  };
  return sink;
}

describe('lean client frames', () => {
  it('encodes masked text frames at every length boundary (7-, 16- and 64-bit lengths)', () => {
    for (const length of [0, 1, 125, 126, 65_535, 65_536]) {
      const text = 'é'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
      const frame = decodeClientFrame(encodeClientFrame(opcodes.text, text));
      expect(frame).toMatchObject({ opcode: opcodes.text, fin: true });
      expect(frame.payload.toString('utf8')).toBe(text);
    }
  });

  it('draws a fresh masking key per frame', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) keys.add(encodeClientFrame(opcodes.text, 'same').subarray(2, 6).toString('hex'));
    expect(keys.size).toBeGreaterThan(45);
  });

  it('reads frames split at every byte, several per chunk, fragmented messages, pings and the close frame', () => {
    const bytes = Buffer.concat([
      serverFrame(opcodes.text, '{"message_type":2}'),
      serverFrame(opcodes.text, 'a'.repeat(300)),
      serverFrame(opcodes.text, 'frag', false),
      serverFrame(opcodes.ping, 'p1'),
      serverFrame(opcodes.continuation, 'men', false),
      serverFrame(opcodes.continuation, 'ted'),
      serverFrame(opcodes.close, Buffer.concat([Buffer.from([0x03, 0xf0]), Buffer.from('bye')])),
    ]);
    for (const step of [1, 3, 7, bytes.length]) {
      const sink = collector();
      const reader = new FrameReader(sink);
      for (let at = 0; at < bytes.length; at += step) reader.push(bytes.subarray(at, at + step));
      expect(sink.texts).toEqual(['{"message_type":2}', 'a'.repeat(300), 'fragmented']);
      expect(sink.pings).toEqual(['p1']);
      expect(sink.closes).toEqual([[1008, 'bye']]);
    }
  });

  it('refuses what a server must not send', () => {
    const masked = Buffer.from([0x81, 0x81, 1, 2, 3, 4, 5]);
    expect(() => new FrameReader(collector()).push(masked)).toThrow(/masked frame/);
    expect(() => new FrameReader(collector()).push(serverFrame(opcodes.binary, 'x'))).toThrow(/binary frame/);
    expect(() => new FrameReader(collector()).push(serverFrame(opcodes.continuation, 'x'))).toThrow(/no message to continue/);
    expect(() => new FrameReader(collector()).push(serverFrame(3, 'x'))).toThrow(/reserved opcode 3/);
    expect(() => new FrameReader(collector()).push(Buffer.from([0xc1, 0x00]))).toThrow(/RSV bits/);
    expect(() => new FrameReader(collector(), 10).push(serverFrame(opcodes.text, 'x'.repeat(11)))).toThrow(/11 bytes \(limit 10\)/);
  });

  it('checks the upgrade answer: status, Upgrade, Sec-WebSocket-Accept, no extension', () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    // RFC 6455 §1.3's example.
    expect(expectedAccept(key)).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const head = (lines: string[]): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
    const ok = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${expectedAccept(key)}`];
    expect(readUpgradeAnswer(Buffer.from('HTTP/1.1 101 Switching'), key)).toBeNull();
    const answer = readUpgradeAnswer(Buffer.concat([head(ok), Buffer.from([0x81, 0x00])]), key);
    expect(answer).toMatchObject({ ok: true });
    expect(answer !== null && answer.ok && [...answer.rest]).toEqual([0x81, 0x00]);
    expect(readUpgradeAnswer(head(['HTTP/1.1 400 Bad Request']), key)).toEqual({ ok: false, problem: 'HTTP 400' });
    expect(readUpgradeAnswer(head([...ok.slice(0, 3), 'Sec-WebSocket-Accept: wrong']), key)).toMatchObject({ ok: false, problem: expect.stringMatching(/Sec-WebSocket-Accept/) });
    expect(readUpgradeAnswer(head([...ok, 'Sec-WebSocket-Extensions: permessage-deflate']), key)).toMatchObject({ ok: false, problem: expect.stringMatching(/extension/) });
  });
});

describe('lean client against a ws server on loopback', () => {
  let server: WebSocketServer | null = null;
  const sockets: LoadSocket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.terminate();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = null;
  });

  async function listen(onConnection: (ws: WebSocket) => void): Promise<string> {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    server.on('connection', onConnection);
    await new Promise<void>((resolve) => server!.once('listening', () => resolve()));
    return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws/api/1/c1/`;
  }

  it('round-trips text (small and large), answers a ping, and closes with the handshake', async () => {
    let pongs = 0;
    let ponged = (): void => undefined;
    const pong = new Promise<void>((resolve) => (ponged = resolve));
    let closedWith: number | null = null;
    let serverClosed = (): void => undefined;
    const closed = new Promise<void>((resolve) => (serverClosed = resolve));
    const url = await listen((ws) => {
      ws.on('message', (data) => ws.send(`echo:${data.toString()}`));
      ws.on('pong', (data) => {
        pongs++;
        if (data.toString() === 'are you there') ponged();
      });
      ws.on('close', (code) => {
        closedWith = code;
        serverClosed();
      });
      ws.ping('are you there');
    });
    const socket = await openLoadSocket('lean', url, { localAddress: '127.0.0.1', handshakeTimeoutMs: 5_000 });
    sockets.push(socket);
    const texts: string[] = [];
    const got = new Promise<void>((resolve) =>
      socket.onText((t) => {
        texts.push(t);
        if (texts.length === 2) resolve();
      }),
    );
    const big = 'y'.repeat(70_000);
    socket.send('hello');
    socket.send(big);
    await Promise.all([got, pong]);
    expect(texts).toEqual(['echo:hello', `echo:${big}`]);
    expect(pongs).toBe(1);
    const ended = new Promise<void>((resolve) => socket.onClose(resolve));
    socket.close(1000);
    await Promise.all([closed, ended]);
    expect(closedWith).toBe(1000);
    expect(socket.closed).toBe(true);
  });

  it('answers a close the server starts, and reports the end', async () => {
    const url = await listen((ws) => ws.on('message', () => ws.close(1008, 'policy')));
    const socket = await openLoadSocket('lean', url, { localAddress: '127.0.0.1', handshakeTimeoutMs: 5_000 });
    sockets.push(socket);
    const ended = new Promise<void>((resolve) => socket.onClose(resolve));
    socket.send('anything');
    await ended;
    expect(socket.closed).toBe(true);
  });

  it('fails the connect with the HTTP status of a refused upgrade', async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient: () => false });
    await new Promise<void>((resolve) => server!.once('listening', () => resolve()));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    await expect(openLoadSocket('lean', url, { localAddress: '127.0.0.1', handshakeTimeoutMs: 5_000 })).rejects.toThrow(/^HTTP 401$/);
  });
});
