import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The peer, served by the authority: `GET /peer.mjs` returns the one-file peer
 * (`dist/peer.mjs`, built by `npm run build`; same version as this server, no
 * token needed), so a CI job needs only Node.js:
 * `curl -fsSL $SERVER/peer.mjs -o peer.mjs && node peer.mjs peer ...`.
 * Also the answers that tell a lost client where to go: a 404 names the right
 * paths, and a plain GET of the peer endpoint gets 426 with a sentence.
 */

const here = dirname(fileURLToPath(import.meta.url));
/** dist/server/http -> dist/peer.mjs; from source (tsx) server/http -> dist/peer.mjs. */
const candidates = [join(here, '..', '..', 'peer.mjs'), join(here, '..', '..', 'dist', 'peer.mjs')];

export function registerPeerBundleRoute(app: FastifyInstance, options: { readonly bundlePath?: string } = {}): void {
  let cached: Buffer | null = null;
  const load = (): Buffer | null => {
    if (cached !== null) return cached;
    for (const path of options.bundlePath ? [options.bundlePath] : candidates) {
      try {
        return (cached = readFileSync(path));
      } catch {
        // try the next place
      }
    }
    return null;
  };

  // Public: a CI job fetches it before it has anything to authenticate with (route-access.ts).
  app.get('/peer.mjs', { config: { access: 'public' } }, async (_req, reply) => {
    const bundle = load();
    if (bundle === null) {
      app.log.error({ candidates }, 'peer bundle missing: run npm run build');
      return reply.code(503).send({ error: { code: 'PEER_BUNDLE_MISSING', message: 'this authority was started without its peer bundle (dist/peer.mjs); run npm run build where it is installed' } });
    }
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-disposition', 'inline; filename="peer.mjs"')
      .send(bundle);
  });

  app.setNotFoundHandler((req, reply) => {
    const path = (req.url.split('?')[0] ?? '/').slice(0, 200);
    const looksLikePeer = /peer|\/ws\b|socket|connect/i.test(path) || isUpgrade(req);
    const hint = looksLikePeer
      ? `Peers connect with a WebSocket to /v1/peer (a --server URL without a path gets /v1/peer added, e.g. --server ${schemeOf(req)}://${req.headers.host ?? 'HOST'}); the peer program itself is GET /peer.mjs.`
      : 'Routes: /v1/peer (peer WebSocket), /peer.mjs (the peer program), /healthz, /metrics, /api/v1/cohorts, /api/v1/peers, /api/v1/stats.';
    return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}. ${hint}` } });
  });
}

/** A plain GET of the WebSocket endpoint: 426 and what to do instead. */
export function answerPlainGetOfPeerPath(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply
    .code(426)
    .header('upgrade', 'websocket')
    .header('connection', 'Upgrade')
    .send({
      error: {
        code: 'UPGRADE_REQUIRED',
        message: `/v1/peer is the WebSocket endpoint for taskshard peers, not a page: run a peer instead (curl -fsSL ${schemeOf(req) === 'wss' ? 'https' : 'http'}://${req.headers.host ?? 'HOST'}/peer.mjs -o peer.mjs && node peer.mjs peer --help).`,
      },
    });
}

/** Whether the request asks for a WebSocket upgrade. */
function isUpgrade(req: FastifyRequest): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

function schemeOf(req: FastifyRequest): 'ws' | 'wss' {
  return req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https' ? 'wss' : 'ws';
}
