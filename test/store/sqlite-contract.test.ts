import type { Store } from '../../server/core/store-port.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { describeStoreContract } from './contract/store-contract.js';

/** The store contract on SQLite: a real database file per test, in a temporary directory. */
describeStoreContract('SQLite', async () => {
  const dir = tempDir('taskshard-contract-');
  const path = dir.file('state.db');
  const opened: Store[] = [new SqliteStore(path)];
  return {
    store: opened[0]!,
    writers: 'exclusive',
    openAnother: async () => {
      const store = new SqliteStore(path);
      opened.push(store);
      return store;
    },
    cleanup: async () => {
      for (const store of opened) store.close();
      dir.remove();
    },
  };
});
