import { isIP, type Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { isLoopback, type ServerConfig } from '../config.js';
import { bearerToken, tokenMatches } from './auth.js';
import { ConnectionLimits } from './connection-limits.js';
import type { Metrics } from './metrics.js';
import { routeAccess } from './route-access.js';

/**
 * Runs in `onRequest` for the WebSocket endpoints (routes with access
 * `peer`), before any WebSocket exists, in this order:
 *
 * 1. `origin` (403): a browser sends `Origin`; it must be the authority's own
 *    (its host equals the `Host` header) or listed in `--allowed-origin`. CLI
 *    peers send none and pass. This stops cross-site WebSocket hijacking.
 * 2. `host` (403), only without a peer token: `Host` must name a loopback
 *    address, the bind address (any IP literal when bound to a wildcard) or an
 *    allowed origin's host. A DNS-rebinding page always sends its own name.
 * 3. `unauthorized` (401): the peer token, when one is set.
 * 4. `connections` / `address-connections` (503): the caps on open
 *    connections, in all and per remote address.
 *
 * A request that does not ask for an upgrade (a plain GET from a browser or
 * curl) is not checked: it never becomes a connection, and the route answers
 * it with 426 and a sentence whatever its token, which reveals nothing.
 *
 * Every refusal (these, an upgrade to a path with no route, counted as
 * `not-found`: a peer configured with a wrong path, and any other 4xx/5xx on
 * an upgrade request, counted as `bad-request`) is logged as `upgrade refused`
 * with its `reason` and counted in `taskshard_upgrades_refused_total{reason}`.
 */
export type UpgradeRefusalReason = 'origin' | 'host' | 'unauthorized' | 'connections' | 'address-connections' | 'not-found' | 'bad-request';

export interface UpgradeRefusal {
  readonly reason: UpgradeRefusalReason;
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** The host part of a `Host` header (`[::1]:8080` -> `::1`), lowercase; null when it is not one. */
export function hostName(hostHeader: string): string | null {
  try {
    const url = new URL(`http://${hostHeader}`);
    if (url.host !== hostHeader.toLowerCase().replace(/:80$/, '')) return null;
    return url.hostname.replace(/^\[|\]$/g, '');
  } catch {
    return null;
  }
}

const wildcardHosts = new Set(['0.0.0.0', '::', '']);

/** The browser-origin and Host checks (1 and 2 above); null when the request passes. */
export function checkBrowserOrigin(headers: IncomingHttpHeaders, config: ServerConfig): UpgradeRefusal | null {
  const host = typeof headers.host === 'string' ? headers.host : '';
  const origin = headers.origin;
  if (origin !== undefined) {
    const allowed = typeof origin === 'string' && (config.allowedOrigins.includes(originOf(origin) ?? '') || isOwnOrigin(origin, host));
    if (!allowed) {
      return {
        reason: 'origin',
        status: 403,
        code: 'FORBIDDEN_ORIGIN',
        message: `WebSocket upgrades from browser origin ${shown(String(origin))} are refused; list it with --allowed-origin to allow it`,
      };
    }
  }
  if (config.peerToken === null) {
    const name = hostName(host);
    const bind = config.host.toLowerCase().replace(/^\[|\]$/g, '');
    const ok =
      name !== null &&
      (isLoopback(name) || name === bind || (wildcardHosts.has(bind) && isIP(name) !== 0) || config.allowedOrigins.some((o) => new URL(o).hostname.replace(/^\[|\]$/g, '') === name));
    if (!ok) {
      return {
        reason: 'host',
        status: 403,
        code: 'FORBIDDEN_HOST',
        message: `without a peer token this authority answers only to a loopback address or ${config.host}, not Host ${shown(host)}; set a peer token to serve other names`,
      };
    }
  }
  return null;
}

function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

function isOwnOrigin(origin: string, hostHeader: string): boolean {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    return hostHeader !== '' && url.host === new URL(`${url.protocol}//${hostHeader}`).host;
  } catch {
    return false;
  }
}

/** Header values echoed in messages are cut short (they are attacker-controlled). */
function shown(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

export interface UpgradeGuardDeps {
  readonly config: ServerConfig;
  readonly metrics: Metrics;
  readonly log: FastifyBaseLogger;
}

/** Registers the guard on the root instance, before the WebSocket routes. Returns the connection counts. */
export function registerUpgradeGuard(app: FastifyInstance, deps: UpgradeGuardDeps): ConnectionLimits {
  const { config, metrics } = deps;
  const refused = new Counter({
    name: 'taskshard_upgrades_refused_total',
    help: 'WebSocket upgrades refused before a connection existed, by reason: origin, host, unauthorized, connections, address-connections, not-found, bad-request.',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });
  const limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerAddress);
  /** Admitted sockets and their address; each is released once, at its close or when its upgrade is refused later. */
  const admitted = new Map<Socket, string>();
  const release = (socket: Socket): void => {
    const address = admitted.get(socket);
    if (address === undefined) return;
    admitted.delete(socket);
    limits.release(address);
  };
  const reasons = new WeakMap<FastifyRequest, UpgradeRefusalReason>();

  const check = (req: FastifyRequest): UpgradeRefusal | null => {
    const browser = checkBrowserOrigin(req.headers, config);
    if (browser) return browser;
    if (config.peerToken !== null && !tokenMatches(bearerToken(req.headers), config.peerToken)) {
      return { reason: 'unauthorized', status: 401, code: 'UNAUTHORIZED', message: 'missing or wrong peer token (Authorization: Bearer <token>)' };
    }
    const socket = req.raw.socket;
    if (admitted.has(socket)) return null;
    const address = socket.remoteAddress ?? 'unknown';
    const hit = limits.tryAdmit(address);
    if (hit === 'connections') {
      return { reason: hit, status: 503, code: 'TOO_MANY_CONNECTIONS', message: `the authority holds its maximum of ${config.maxConnections} connections; retry later` };
    }
    if (hit === 'address-connections') {
      return {
        reason: hit,
        status: 503,
        code: 'TOO_MANY_CONNECTIONS',
        message: `${address} holds the maximum of ${config.maxConnectionsPerAddress} connections from one address; close some or raise --max-connections-per-address`,
      };
    }
    admitted.set(socket, address);
    socket.once('close', () => release(socket));
    return null;
  };

  app.addHook('onRequest', async (req, reply) => {
    if (routeAccess(req) !== 'peer' || !asksForUpgrade(req)) return;
    const refusal = check(req);
    if (refusal === null) return;
    reasons.set(req, refusal.reason);
    await reply
      .code(refusal.status)
      .header('connection', 'close')
      .header(refusal.status === 503 ? 'retry-after' : 'x-taskshard-refused', refusal.status === 503 ? '5' : refusal.reason)
      .send({ error: { code: refusal.code, message: refusal.message } });
  });

  app.addHook('onResponse', async (req, reply) => {
    // A peer route's refusals, and an upgrade to a path with no route (a peer configured with a wrong path).
    const access = routeAccess(req);
    if (reply.statusCode < 400 || (access !== 'peer' && access !== null) || !asksForUpgrade(req)) return;
    // A refused upgrade holds no slot and no socket.
    release(req.raw.socket);
    req.raw.socket.destroy();
    const reason = reasons.get(req) ?? (access === null ? 'not-found' : 'bad-request');
    refused.inc({ reason });
    deps.log.warn(
      { reason, status: reply.statusCode, remoteAddress: req.socket.remoteAddress, origin: shownHeader(req.headers.origin), host: shownHeader(req.headers.host), url: shownHeader(req.url) },
      'upgrade refused',
    );
  });
  return limits;
}

/** Whether the request asks for a WebSocket upgrade (`Upgrade: websocket`, any case). */
function asksForUpgrade(req: FastifyRequest): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

function shownHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
