import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyServerOptions } from 'fastify';

/**
 * What a standby authority serves while another one holds the leader lease:
 * `/livez` 200 (the process is fine), `/readyz` 503 (do not route peers here),
 * `/healthz` 200 with `{"status":"standby","active":"<id>"}`, and 503 with
 * `Retry-After` for everything else, WebSocket upgrades included (a peer
 * retries, and behind a load balancer lands on the active one).
 */
export interface StandbyView {
  /** The active authority's id, or null when none holds a live lease. */
  active(): string | null;
}

export interface StandbyServer {
  readonly port: number;
  readonly log: FastifyBaseLogger;
  close(): Promise<void>;
}

export async function startStandbyServer(
  listen: { host: string; port: number },
  view: StandbyView,
  retryAfterSec: number,
  logger: FastifyServerOptions['logger'],
): Promise<StandbyServer> {
  const retryAfter = String(Math.max(1, Math.ceil(retryAfterSec)));
  const app = Fastify({ logger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true });
  const standby = () => ({ status: 'standby', active: view.active() });
  app.get('/livez', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => reply.code(503).header('retry-after', retryAfter).header('cache-control', 'no-store').send(standby()));
  app.get('/healthz', async (_req, reply) => reply.header('cache-control', 'no-store').send(standby()));
  app.setNotFoundHandler(async (_req, reply) =>
    reply
      .code(503)
      .header('retry-after', retryAfter)
      .send({ error: { code: 'STANDBY', message: `this authority is on standby; the active one is ${view.active() ?? 'not known yet'}` } }),
  );
  // No WebSocket here: refuse every upgrade with a plain HTTP 503 the peer's client reads as "retry".
  app.server.on('upgrade', (_req, socket: Socket) => {
    const body = JSON.stringify({ error: { code: 'STANDBY', message: 'this authority is on standby' } });
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${retryAfter}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  await app.listen(listen);
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : listen.port,
    log: app.log,
    close: () => app.close(),
  };
}
