import type Database from 'better-sqlite3';
import type { Store } from '../core/store-port.js';
import { openSqliteDatabase, type SqliteOptions } from './sqlite-database.js';
import { SqliteReadModel } from './sqlite-read-model.js';
import { SqliteRetention } from './sqlite-retention.js';
import { SqliteSchedulerStore } from './sqlite-scheduler-store.js';

/**
 * The embedded store: the three parts of the store contract over one
 * better-sqlite3 connection in WAL mode. Every batch of writes is one
 * transaction; the transport sends no frame about a transition before its
 * batch has committed.
 */
export type SqliteStoreOptions = SqliteOptions;

export class SqliteStore implements Store {
  readonly db: Database.Database;
  readonly scheduler: SqliteSchedulerStore;
  readonly readModel: SqliteReadModel;
  readonly retention: SqliteRetention;

  constructor(readonly location: string, options: SqliteStoreOptions = {}) {
    this.db = openSqliteDatabase(location, options);
    this.scheduler = new SqliteSchedulerStore(this.db);
    this.readModel = new SqliteReadModel(this.db);
    this.retention = new SqliteRetention(this.db);
  }

  /** `PRAGMA integrity_check`: "ok" when the file is sound. */
  integrityCheck(): string {
    return (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
