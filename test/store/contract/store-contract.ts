import { describe } from 'vitest';
import type { Store } from '../../../server/core/store-port.js';
import { cacheEvidenceContract } from './cache-evidence-contract.js';
import { labelsContract } from './labels-contract.js';
import { readModelContract } from './read-model-contract.js';
import { retentionContract } from './retention-contract.js';
import { rowsContract } from './rows-contract.js';
import { schedulerStoreContract } from './scheduler-store-contract.js';

/**
 * The store contract suite: one set of tests that every implementation of
 * the three store parts (scheduler store, read model, retention) must pass.
 * An implementation plugs in with a factory that opens a fresh, empty,
 * migrated database per test:
 *
 * ```ts
 * describeStoreContract('SQLite', async () => { ...; return { store, openAnother, cleanup }; });
 * ```
 *
 * Calls are awaited even where today's signature is synchronous, so an
 * asynchronous implementation fits without changing the suite.
 */
export interface StoreUnderTest {
  /** A fresh store on an empty database. */
  readonly store: Store;
  /** Opens another store instance on the same database (a restart, or a second writer); `cleanup` closes it. */
  openAnother(): Promise<Store>;
  /**
   * How a second writer is kept out: `exclusive` (SQLite: a second store on the
   * same file is refused while the first is open) or `fenced` (PostgreSQL:
   * several authorities share the database; each batch is fenced by the
   * writer's claim, and a deposed writer's next batch fails).
   */
  readonly writers: 'exclusive' | 'fenced';
  /** Closes every store the test opened and deletes the database. */
  cleanup(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreUnderTest>;

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    schedulerStoreContract(factory);
    readModelContract(factory);
    retentionContract(factory);
    labelsContract(factory);
    cacheEvidenceContract(factory);
    rowsContract(factory);
  });
}
