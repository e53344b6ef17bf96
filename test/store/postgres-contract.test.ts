import { afterAll, beforeAll, describe } from 'vitest';
import type { Store } from '../../server/core/store-port.js';
import { openPostgresStore } from '../../server/store/postgres/postgres-store.js';
import { postgresBinDir, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { describeStoreContract } from './contract/store-contract.js';

/** The store contract on a real PostgreSQL: one throwaway cluster for the file, a fresh database per test. */
const pgBin = postgresBinDir();

describe.skipIf(pgBin === null)('PostgreSQL store', () => {
  let cluster: PostgresCluster | null = null;
  let databases = 0;
  beforeAll(async () => {
    cluster = await startPostgresCluster(pgBin!);
  }, 120_000);
  afterAll(() => cluster?.stop());

  describeStoreContract('PostgreSQL', async () => {
    const url = cluster!.createDatabase(`contract_${++databases}`);
    const opened: Store[] = [await openPostgresStore(url, { maxConnections: 2 })];
    return {
      store: opened[0]!,
      writers: 'fenced',
      openAnother: async () => {
        const store = await openPostgresStore(url, { maxConnections: 2 });
        opened.push(store);
        return store;
      },
      cleanup: async () => {
        for (const store of opened) await store.close();
      },
    };
  });
});
