import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isBuild, TdClient, tdUrl } from '../helpers/td-client.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * server/http/ws-upgrade-release.ts: an open WebSocket no longer keeps its HTTP
 * upgrade's response (and through it fastify's request and reply) reachable, and a
 * protocol violation by the peer still ends the connection at once, as the plugin's
 * default error handler did.
 */

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-release-');
  server = await startServer({ dbPath: dir.file('s.db') });
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await server.close();
  dir.remove();
});

/** The server side of every open WebSocket: its TCP socket's `_httpMessage` (the upgrade's response while assigned). */
function heldResponses(): unknown[] {
  return [...server.built.app.websocketServer.clients].map((ws) => (ws as unknown as { _socket: { _httpMessage?: unknown } })._socket._httpMessage ?? null);
}

/** A WebSocket handshake written by hand, so the test can then send a frame no `ws` client would. */
async function rawUpgrade(path: string): Promise<Socket> {
  const { port } = new URL(server.httpUrl);
  const socket = connect(Number(port), '127.0.0.1');
  closers.push(async () => void socket.destroy());
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
  const head = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData).once('error', reject);
  });
  expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
  return socket;
}

describe('the upgrade request is let go once the WebSocket is open', () => {
  it('no open v1 or Task Director connection holds its upgrade response', async () => {
    const peer = await RawPeer.connect(server.wsUrl);
    closers.push(() => peer.kill());
    peer.send(helloFor('p1', flatSchema(2)));
    await peer.waitType('assign');
    const td = await TdClient.connect(tdUrl(server.httpUrl, 'c1'), 'c1');
    closers.push(() => td.kill());
    td.init({ totalTasks: 2 });
    await td.waitFor(isBuild);
    expect(heldResponses()).toEqual([null, null]);
  });

  for (const path of ['/v1/peer', '/ws/api/1/c2/']) {
    it(`${path}: an unmasked frame (a protocol violation) ends the connection at once`, async () => {
      const socket = await rawUpgrade(path);
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // A client frame must be masked (RFC 6455 §5.1); ws emits 'error' for this one.
      socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
      await ended;
      expect(server.built.app.websocketServer.clients.size).toBe(0);
    });
  }
});
