import type { Store } from '../core/store-port.js';
import { SqliteStore } from './sqlite-store.js';

/** Where and how to open the store: today `dbPath` is always a SQLite file (`postgres://` is issue #18). */
export interface StoreLocation {
  readonly dbPath: string;
  readonly synchronous?: 'normal' | 'full';
}

/** Opens the store the configuration names; the caller (or `buildApp`, once given it) closes it. */
export function openStore(location: StoreLocation): Store {
  return new SqliteStore(location.dbPath, { synchronous: location.synchronous });
}
