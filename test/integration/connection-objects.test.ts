import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ServerSocket } from '../../server/http/socket-session.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isBuild, TdClient, tdUrl } from '../helpers/td-client.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * server/http/socket-session.ts: a connection is one object (issue #17, memory per
 * idle peer). Its socket's listeners are functions shared by every socket, not
 * closures made per connection, and the socket points at its connection.
 */

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-conn-');
  server = await startServer({ dbPath: dir.file('s.db') });
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await server.close();
  dir.remove();
});

describe('one object per connection', () => {
  it('v1 and Task Director sockets share their listeners and point at their connection', async () => {
    const peers = await Promise.all(['p1', 'p2'].map((id) => RawPeer.connect(server.wsUrl).then((p) => (closers.push(() => p.kill()), p.send(helloFor(id, flatSchema(3))), p))));
    await Promise.all(peers.map((p) => p.waitType('assign')));
    const td = await TdClient.connect(tdUrl(server.httpUrl, 'c1'), 'c1');
    closers.push(() => td.kill());
    td.init({ totalTasks: 2 });
    await td.waitFor(isBuild);

    const sockets = [...server.built.app.websocketServer.clients];
    expect(sockets).toHaveLength(3);
    for (const socket of sockets) {
      expect(socket).toBeInstanceOf(ServerSocket);
      expect((socket as ServerSocket).session?.connId).toEqual(expect.any(Number));
    }
    for (const event of ['message', 'close', 'pong', 'error'] as const) {
      // Ours is the last listener of each event, the same function on every socket (whatever the protocol);
      // before it only ws's own client tracking (a close listener) may come.
      const listeners = sockets.map((s) => s.listeners(event));
      for (const l of listeners) expect(l).toHaveLength(event === 'close' ? 2 : 1);
      expect(new Set(listeners.map((l) => l.at(-1))).size).toBe(1);
    }
  });

});
