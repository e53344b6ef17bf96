import type { Store } from '../core/store-port.js';
import { SqliteStore } from './sqlite-store.js';

/** Where and how to open the store: a `postgres://` (or `postgresql://`) URL, else a SQLite file path. */
export interface StoreLocation {
  readonly dbPath: string;
  readonly synchronous?: 'normal' | 'full';
}

/** Whether `--db` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(dbPath: string): boolean {
  return /^postgres(ql)?:\/\//i.test(dbPath);
}

/**
 * Opens the store the configuration names; the caller (or `buildApp`, once
 * given it) closes it. The PostgreSQL driver is loaded only for a
 * `postgres://` URL: an authority on SQLite never loads it.
 */
export async function openStore(location: StoreLocation): Promise<Store> {
  if (isPostgresUrl(location.dbPath)) return (await import('./postgres/postgres-store.js')).openPostgresStore(location.dbPath);
  // The authority's store: WAL checkpoints in a worker thread, never inside a commit on the event loop.
  return new SqliteStore(location.dbPath, { synchronous: location.synchronous, checkpointInBackground: true });
}
