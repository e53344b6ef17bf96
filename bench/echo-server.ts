import { WebSocketServer } from 'ws';

/**
 * The benchmark's same-run baseline: a bare `ws` server on loopback that
 * echoes every text frame back. Usage: `node dist/bench/echo-server.js PORT`.
 * Prints `listening` when ready; exits on SIGTERM.
 */
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: echo-server PORT\n');
  process.exit(2);
}
const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => undefined);
});
server.on('listening', () => process.stdout.write('listening\n'));
process.once('SIGTERM', () => {
  for (const client of server.clients) client.terminate();
  server.close(() => process.exit(0));
});
