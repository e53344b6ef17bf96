import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AuthorityApp } from '../../server/app.js';
import { parseServerConfig } from '../../server/config.js';
import type { Write } from '../../server/core/records.js';
import { openStore } from '../../server/store/open-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * `--group-commit MS` (server/authority.ts): while few peers are connected, inputs that arrive
 * within the window share one commit, and nothing is acknowledged before it. The window is long
 * here (1 s) so the second hello surely arrives inside it; nothing in the test waits on time.
 */
let dir: ReturnType<typeof tempDir>;
let built: AuthorityApp | null;
const peers: RawPeer[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-group-commit-');
  built = null;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await built?.close();
  dir.remove();
});

describe('group commit', () => {
  it('commits the inputs of one window together and sends nothing before that commit', async () => {
    const config = parseServerConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', dbPath: dir.file('g.db'), groupCommitMs: 1000 });
    const store = await openStore(config);
    const log: string[] = [];
    const commits: (readonly Write[])[] = [];
    const apply = store.scheduler.apply.bind(store.scheduler);
    store.scheduler.apply = (writes) => {
      if (writes.length > 0) {
        commits.push(writes);
        log.push('commit');
      }
      return apply(writes);
    };
    built = await buildApp(config, { store, clock: new FakeClock(), logger: false });
    await built.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `ws://127.0.0.1:${(built.app.server.address() as AddressInfo).port}/v1/peer`;
    const a = await RawPeer.connect(url);
    const b = await RawPeer.connect(url);
    peers.push(a, b);
    const before = commits.length;
    const logStart = log.length;

    const schema = flatSchema(3);
    a.send(helloFor('a', schema));
    // A few event-loop turns apart (the server reads a's hello first, most likely in an earlier turn).
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    b.send(helloFor('b', schema));
    const welcomed = async (p: RawPeer, name: string): Promise<void> => {
      await p.waitType('welcome');
      log.push(`welcome ${name}`);
    };
    await Promise.all([welcomed(a, 'a'), welcomed(b, 'b')]);

    const batch = commits.slice(before);
    expect(batch).toHaveLength(1); // both joins in one transaction
    expect(batch[0]!.filter((w) => w.table === 'peer').map((w) => (w.table === 'peer' ? w.row.peerId : '')).sort()).toEqual(['a', 'b']);
    expect(log.slice(logStart)).toEqual(['commit', expect.stringMatching(/^welcome /), expect.stringMatching(/^welcome /)]);
    expect(await built.store.readModel.listPeers({ limit: 10 })).toHaveLength(2);
  });
});
