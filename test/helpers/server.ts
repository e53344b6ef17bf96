import type { AddressInfo } from 'node:net';
import { buildApp, type AuthorityApp } from '../../server/app.js';
import { parseServerConfig, type ServerConfigInput } from '../../server/config.js';
import type { IdSource } from '../../server/core/core-types.js';
import { openStore } from '../../server/store/open-store.js';
import { FakeClock } from './fake-clock.js';

export interface TestServer {
  readonly built: AuthorityApp;
  readonly clock: FakeClock;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** Moves the fake clock and lets the authority act on it (no sleeping). */
  advance(ms: number): Promise<void>;
  /** Resolves once every queued commit and frame has gone out. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real authority (fastify + @fastify/websocket + SQLite file) on 127.0.0.1
 * with an ephemeral port and a fake clock.
 */
export async function startServer(overrides: ServerConfigInput & { dbPath: string }, options: { clock?: FakeClock; ids?: IdSource } = {}): Promise<TestServer> {
  const clock = options.clock ?? new FakeClock();
  const config = parseServerConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...overrides });
  const built = await buildApp(config, { store: await openStore(config), clock, ...(options.ids ? { ids: options.ids } : {}), logger: false });
  await built.app.listen({ host: config.host, port: 0 });
  const { port } = built.app.server.address() as AddressInfo;
  const turns = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
  // Inputs in flight arrive, what waits for a group-commit window commits now, and its frames go out.
  const settle = async (): Promise<void> => {
    await turns();
    await built.authority.settled();
    await turns();
  };
  return {
    built,
    clock,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/peer`,
    async advance(ms: number) {
      clock.advance(ms);
      built.authority.submit({ kind: 'tick' });
      await settle();
    },
    settle,
    close: () => built.close(),
  };
}
