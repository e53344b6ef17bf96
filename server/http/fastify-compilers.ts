import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
/** Both factories' shape: (external schemas, options) => a compiler. */
type Factory = (externalSchemas: unknown, options: unknown) => unknown;

/**
 * Fastify's JSON-schema compilers (ajv and fast-json-stringify), loaded on
 * first use instead of when the app is built. Our routes validate with zod
 * and declare no fastify schema, so an authority never loads them; without
 * this, building the app required them at once (about 190 ms of a ~0.8 s
 * start-up on an idle 2-core machine, issue 11). A route that does declare
 * a schema gets fastify's own compilers, unchanged.
 */
export function lazySchemaCompilers(): CompilersFactory {
  // Resolved from fastify's own location: they are its dependencies, not ours.
  const fromFastify = (): NodeJS.Require => createRequire(createRequire(import.meta.url).resolve('fastify'));
  const lazy = (name: string): Factory => {
    let factory: Factory | null = null;
    return (externalSchemas, options) => {
      factory ??= (fromFastify()(name) as () => Factory)();
      return factory(externalSchemas, options);
    };
  };
  return { buildValidator: lazy('@fastify/ajv-compiler'), buildSerializer: lazy('@fastify/fast-json-stringify-compiler') } as CompilersFactory;
}
