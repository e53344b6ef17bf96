import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.js';
import { bearerToken, tokenMatches } from './auth.js';
import { mayRead } from './reader-auth.js';

/**
 * Who may call a route, declared on the route itself (`config: { access }`)
 * and checked in `onRequest` against the route the router matched — never
 * against the URL string, so `/%61pi/v1/cohorts`, `HEAD`, an absolute-form
 * request target or any other spelling the router accepts gets the same
 * answer as the plain path, and nothing (not even the body) is read first.
 *
 * - `public`: anyone (`/healthz`, `/metrics`, the dashboard's login and
 *   assets; its pages redirect to the login themselves).
 * - `read`: the peer or the admin token when either is set, as a Bearer
 *   header or the dashboard's login cookie (reader-auth.ts). A route that
 *   declares nothing is `read`: closed by default.
 * - `admin`: the admin token only; 403 `ADMIN_DISABLED` when there is none.
 * - `peer`: the WebSocket endpoints; checked by the upgrade guard
 *   (`upgrade-guard.ts`), which also counts and logs refusals.
 *
 * Unmatched requests (404) carry no data and need no token.
 */
export type RouteAccess = 'public' | 'read' | 'admin' | 'peer';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route; see server/http/route-access.ts. Default `read`. */
    access?: RouteAccess;
  }
}

/** The access a request's matched route declares, or null for an unmatched request (404). */
export function routeAccess(req: FastifyRequest): RouteAccess | null {
  if (req.is404) return null;
  return req.routeOptions.config.access ?? 'read';
}

function refuse(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  // The body of a refused request is never read; close the connection so a slow one is not held.
  return reply.code(status).header('connection', 'close').send({ error: { code, message } });
}

/** Registers the access hook on the root instance, before any route. */
export function registerRouteAccess(app: FastifyInstance, config: ServerConfig): void {
  app.addHook('onRequest', async (req, reply) => {
    const access = routeAccess(req);
    if (access === null || access === 'public' || access === 'peer') return;
    if (access === 'admin') {
      const token = bearerToken(req.headers);
      if (config.adminToken === null) {
        await refuse(reply, 403, 'ADMIN_DISABLED', 'the admin API is disabled: start the server with TASKSHARD_ADMIN_TOKEN set');
      } else if (!tokenMatches(token, config.adminToken)) {
        await refuse(reply, 401, 'UNAUTHORIZED', 'admin routes need "Authorization: Bearer <admin token>"');
      }
      return;
    }
    if (!mayRead(req.headers, config)) await refuse(reply, 401, 'UNAUTHORIZED', 'the API needs "Authorization: Bearer <peer or admin token>" (or the dashboard login cookie)');
  });
}
