import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.js';
import { isReaderToken, mayRead, readsNeedToken, tokenCookieName } from './reader-auth.js';

/**
 * The dashboard: static files built by `npm run build` into `dist/web/`
 * (served from memory), the pages of its client-side router, and a login
 * form that puts the peer or admin token into an HttpOnly cookie. Without
 * tokens (loopback only) there is no login: every page is open, like the API.
 */

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

/** Pages the client-side router draws; each is served index.html. */
export const dashboardPages = ['/', '/cohorts', '/cohorts/:id', '/peers', '/trends'] as const;

const cookieMaxAgeSec = 30 * 86_400;

/** `dist/web` next to the compiled server, or the repo's `dist/web` when running from source. */
export function dashboardAssetsDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, '../../web'), join(here, '../../dist/web')]) {
    if (existsSync(join(candidate, 'app.js')) && existsSync(join(candidate, 'index.html'))) return candidate;
  }
  return null;
}

function loadAssets(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const type = contentTypes[extname(name)];
        if (type) files.set(relative(dir, path).split(sep).join('/'), { body: readFileSync(path), type });
      }
    }
  };
  walk(dir);
  return files;
}

/** Only same-site paths are followed after login (no `//host` or absolute URLs). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[A-Za-z0-9_.:/?=&%-]*$/.test(next) ? next : '/';
}

export function registerDashboardRoutes(app: FastifyInstance, config: ServerConfig): void {
  const dir = dashboardAssetsDir();
  if (dir === null) app.log.warn('dashboard assets are missing (dist/web): run `npm run build`; GET / answers 503 until then');
  const assets = dir === null ? new Map<string, { body: Buffer; type: string }>() : loadAssets(dir);

  const sendAsset = (reply: FastifyReply, name: string): FastifyReply => {
    const asset = assets.get(name);
    if (!asset) {
      if (dir === null) return reply.code(503).type('text/plain; charset=utf-8').send('dashboard assets are not built: run `npm run build` (they go to dist/web)\n');
      return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no dashboard file ${name}` } });
    }
    return reply
      .header('cache-control', name.endsWith('.html') ? 'no-store' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .type(asset.type)
      .send(asset.body);
  };

  const page = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    if (!mayRead(req.headers, config)) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    return sendAsset(reply.header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'"), 'index.html');
  };
  // Pages, assets and the login are public routes (route-access.ts): a page without a token redirects to the login itself.
  for (const path of dashboardPages) app.get(path, { config: { access: 'public' } }, page);

  app.get('/assets/*', { config: { access: 'public' } }, async (req, reply) => sendAsset(reply, (req.params as { '*': string })['*']));

  app.get('/login', { config: { access: 'public' } }, async (req, reply) => {
    if (!readsNeedToken(config)) return reply.redirect('/', 303);
    return sendAsset(reply, 'login.html');
  });

  app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
      done(null, new URLSearchParams(String(body)));
    });
    scope.post('/login', { config: { access: 'public' } }, async (req, reply) => {
      const form = req.body instanceof URLSearchParams ? req.body : new URLSearchParams();
      const next = safeNext(form.get('next'));
      if (!readsNeedToken(config)) return reply.redirect(next, 303);
      const token = form.get('token');
      if (!isReaderToken(token, config)) {
        req.log.warn({ ip: req.ip }, 'dashboard login refused: wrong token');
        return reply.redirect(`/login?error=1&next=${encodeURIComponent(next)}`, 303);
      }
      const secure = req.protocol === 'https' ? '; Secure' : '';
      return reply
        .header('set-cookie', `${tokenCookieName}=${encodeURIComponent(token!)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${cookieMaxAgeSec}${secure}`)
        .redirect(next, 303);
    });
    scope.post('/logout', { config: { access: 'public' } }, async (_req, reply) =>
      reply.header('set-cookie', `${tokenCookieName}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`).redirect(readsNeedToken(config) ? '/login' : '/', 303),
    );
  });
}
