import type { ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';

/**
 * Lets go of the HTTP upgrade request once its WebSocket is open. Call it
 * first thing in a `wsHandler`, before adding listeners to the socket.
 *
 * `@fastify/websocket` routes an upgrade through fastify with a
 * `ServerResponse` assigned to the TCP socket, and adds an `error` listener to
 * the WebSocket that closes over fastify's request and reply. Both live as
 * long as the connection, so every idle peer kept its upgrade request (headers,
 * raw headers), a response, fastify's request and reply and a child logger:
 * about 3 KB of heap per connection (issue #17, `npm run bench -- --idle`).
 *
 * Here the response is detached from the socket and that listener removed.
 * The caller adds its own `error` listener in the same turn: the connection
 * (socket-session.ts) logs the error and terminates the socket, as the
 * plugin's default handler did (`ws` emits `error` only for a protocol
 * violation by the peer).
 */
export function releaseUpgradeRequest(socket: WebSocket, request: FastifyRequest): void {
  const tcp = request.raw.socket as (typeof request.raw.socket & { _httpMessage?: ServerResponse | null }) | null;
  const response = tcp?._httpMessage;
  if (tcp && response) response.detachSocket(tcp);
  socket.removeAllListeners('error');
}
