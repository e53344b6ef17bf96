import postgres from 'postgres';
import { migrationLockKey, pgMigrations } from './pg-migrations.js';

/** One connection pool of the `postgres` client; every query of the store goes through it. */
export type Sql = postgres.Sql<{ bigint: number }>;

/** Options for {@link openPostgres}. */
export interface PgOptions {
  /** Pool size (default 4: one writer, the read model and the leader lease renewals share it). */
  readonly maxConnections?: number;
  /** Seconds to wait for a connection before failing (default 10). */
  readonly connectTimeoutSec?: number;
}

/**
 * BIGINT (oid 20) read back as a JS number: every BIGINT column holds epoch
 * milliseconds, a count or an event sequence, all far below 2^53; a value
 * beyond that is corruption and fails loudly instead of losing digits.
 */
const bigintAsNumber = {
  to: 20,
  from: [20],
  serialize: (x: number): string => String(x),
  parse: (x: string): number => {
    const n = Number(x);
    if (!Number.isSafeInteger(n)) throw new Error(`corrupt database: BIGINT value ${x} is beyond the safe integer range`);
    return n;
  },
};

/** The URL without its password, for logs. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** Connects (lazily, on first query) with BIGINT as number and notices silenced. */
export function connectPostgres(url: string, options: PgOptions = {}): Sql {
  return postgres(url, {
    max: options.maxConnections ?? 4,
    connect_timeout: options.connectTimeoutSec ?? 10,
    onnotice: () => {},
    types: { bigint: bigintAsNumber },
    // One authority process per connection name in pg_stat_activity.
    connection: { application_name: 'taskshard' },
  }) as unknown as Sql;
}

/** Applies the migrations this taskshard knows and the database lacks; refuses a newer database. */
export async function migratePostgres(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${migrationLockKey.toString()}::bigint)`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`;
    const applied = new Set((await tx<{ version: number }[]>`SELECT version FROM schema_migrations`).map((r) => r.version));
    const newest = Math.max(0, ...applied);
    const known = Math.max(...pgMigrations.map((m) => m.version));
    if (newest > known) throw new Error(`database schema version ${newest} is newer than this taskshard knows (${known}); upgrade taskshard`);
    for (const m of pgMigrations) {
      if (applied.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
    }
  });
}
