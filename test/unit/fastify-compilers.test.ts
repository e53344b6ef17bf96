import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { lazySchemaCompilers } from '../../server/http/fastify-compilers.js';

/**
 * The authority builds fastify with compilers that load ajv and
 * fast-json-stringify only on first use (start-up time, issue 11). A route
 * that declares a JSON schema must still be validated and serialized by
 * fastify's own compilers.
 */
describe('lazy fastify schema compilers', () => {
  let app: ReturnType<typeof Fastify> | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('validates a body and serializes a response of a route that declares schemas', async () => {
    app = Fastify({ schemaController: { compilersFactory: lazySchemaCompilers() } });
    app.post(
      '/echo',
      {
        schema: {
          body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
          response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
      async (request: { body: unknown }) => ({ n: (request.body as { n: number }).n, secret: 'dropped by the serializer' }),
    );
    const bad = await app.inject({ method: 'POST', url: '/echo', payload: { n: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ message: 'body/n must be integer' });
    const good = await app.inject({ method: 'POST', url: '/echo', payload: { n: 3 } });
    expect(good.statusCode).toBe(200);
    expect(good.body).toBe('{"n":3}');
  });
});
