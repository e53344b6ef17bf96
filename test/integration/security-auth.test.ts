import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Issue #12, finding 1: the read API answered `/%61pi/v1/cohorts` and `HEAD`
 * without a token, because auth tested the raw URL string while the router
 * decoded it. Auth now follows the matched route, so every spelling the
 * router accepts needs the token, and admin routes refuse before the body.
 */
const peerToken = 'peer-token-0123456789abcdef';
const adminToken = 'admin-token-0123456789abcdef';

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
let port: number;

beforeAll(async () => {
  dir = tempDir('taskshard-sec-auth-');
  server = await startServer({ dbPath: dir.file('auth.db'), peerToken, adminToken });
  port = Number(new URL(server.httpUrl).port);
});
afterAll(async () => {
  await server.close();
  dir.remove();
});

interface RawResponse {
  readonly status: number;
  readonly body: string;
}

/** One HTTP request with the path sent exactly as given (no client-side normalization). */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const readRoutes = ['/api/v1/cohorts', '/api/v1/peers', '/api/v1/stats', '/api/v1/cohorts/c_x'];

/** Spellings of one path that a URL decoder, a case-folder or a proxy might treat as the same route. */
function spellings(path: string): string[] {
  const encodedA = path.replace('/api/', '/%61pi/');
  const encodedAll = path.replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  const encodedUpperHex = path.replace('/v1/', '/%76%31/').replace('/api/', '/a%70i/');
  return [
    path,
    encodedA,
    encodedAll,
    encodedUpperHex,
    path.toUpperCase(),
    path.replace('/api/', '/API/'),
    `${path}?limit=5`,
    `${path}/`,
    path.replace('/api/', '//api/'),
    path.replace('/v1/', '/v1/./'),
    path.replace('/v1/', '/x/../v1/'),
    path.replace('/api/', '/api%2F'),
    `http://127.0.0.1:${port}${path}`,
  ];
}

describe('read routes need a token however they are spelled', () => {
  for (const route of readRoutes) {
    it(`${route}: GET and HEAD without a token never answer 2xx; with one, the decoded spellings do`, async () => {
      for (const path of spellings(route)) {
        for (const method of ['GET', 'HEAD']) {
          const anonymous = await raw(method, path);
          expect(anonymous.status, `${method} ${path} without a token`).toBeGreaterThanOrEqual(400);
          expect(anonymous.body, `${method} ${path} without a token`).not.toMatch(/"(cohorts|peers|cohortsOpen|steps)"/);
        }
        // The same spelling with the token: whatever the router makes of it, it is not refused for auth.
        const withToken = await raw('GET', path, { authorization: `Bearer ${peerToken}` });
        expect(withToken.status, `GET ${path} with the token`).not.toBe(401);
      }
    });
  }

  it('the router-decoded spellings are refused with 401, not only 404', async () => {
    for (const route of readRoutes) {
      for (const path of [route.replace('/api/', '/%61pi/'), route.replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)]) {
        for (const method of ['GET', 'HEAD']) expect((await raw(method, path)).status, `${method} ${path}`).toBe(401);
        const ok = await raw('GET', path, { authorization: `Bearer ${adminToken}` });
        expect(ok.status, `GET ${path} with the admin token`).toBe(route.endsWith('c_x') ? 404 : 200);
      }
    }
  });

  it('other methods on read routes are refused too (no data, no handler)', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const res = await raw(method, '/%61pi/v1/cohorts');
      expect(res.status, method).toBeGreaterThanOrEqual(400);
      expect(res.body).not.toMatch(/"cohorts"/);
    }
  });
});

describe('admin routes authenticate before the body', () => {
  it('answers 401 at once to a POST whose body never arrives', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/%61pi/v1/cohorts/c_x/cancel', headers: { 'content-type': 'application/json', 'content-length': '1000' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      req.write('{"a":');
      // The rest of the body never comes: the answer must not wait for it.
      setTimeout(() => {
        req.destroy();
        reject(new Error('no answer within 5 s while the body is incomplete'));
      }, 5_000).unref();
    });
    expect(status).toBe(401);
  });

  it('refuses the peer token on admin routes in every spelling', async () => {
    for (const path of ['/api/v1/cohorts/c_x/cancel', '/%61pi/v1/cohorts/c_x/cancel', '/api/v1/cohorts/c_x/steps/s1/%72etry']) {
      const res = await raw('POST', path, { authorization: `Bearer ${peerToken}` });
      expect(res.status, path).toBe(401);
      const admin = await raw('POST', path, { authorization: `Bearer ${adminToken}` });
      expect(admin.status, `${path} with the admin token`).toBe(404);
    }
  });
});
