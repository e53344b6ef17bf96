import type { Store, StoreHealth } from '../../core/store-port.js';
import { connectPostgres, migratePostgres, redactedUrl, type PgOptions, type Sql } from './pg-connection.js';
import { PgReadModel } from './pg-read-model.js';
import { PgRetention } from './pg-retention.js';
import { PgSchedulerStore } from './pg-scheduler-store.js';

/**
 * The store contract on PostgreSQL (`--db postgres://...`): the three parts
 * over one connection pool of the `postgres` client. Open it with
 * {@link openPostgresStore}, which connects and migrates first.
 */
export class PostgresStore implements Store {
  readonly scheduler: PgSchedulerStore;
  readonly readModel: PgReadModel;
  readonly retention: PgRetention;
  readonly location: string;
  private closing: Promise<void> | null = null;

  constructor(readonly sql: Sql, url: string) {
    this.location = redactedUrl(url);
    this.scheduler = new PgSchedulerStore(sql);
    this.readModel = new PgReadModel(sql);
    this.retention = new PgRetention(sql);
  }

  health(): StoreHealth {
    return { kind: 'postgres', status: this.closing === null ? 'ok' : 'closed', location: this.location };
  }

  /** Closes the pool (queries in flight get 5 s to finish); resolves once every connection is gone; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.sql.end({ timeout: 5 });
    return this.closing;
  }
}

/** Connects, applies migrations and returns the store; fails naming the (password-free) URL. */
export async function openPostgresStore(url: string, options: PgOptions = {}): Promise<PostgresStore> {
  const sql = connectPostgres(url, options);
  try {
    await migratePostgres(sql);
  } catch (err) {
    await sql.end({ timeout: 1 });
    throw new Error(`PostgreSQL store at ${redactedUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  return new PostgresStore(sql, url);
}
