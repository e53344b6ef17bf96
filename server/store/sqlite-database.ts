import Database from 'better-sqlite3';
import { migrations } from './migrations.js';

/** `full` survives power loss; `normal` (default) survives a crash of the process. */
export interface SqliteOptions {
  readonly synchronous?: 'normal' | 'full';
}

/** Opens (creating if missing) a database file in WAL mode with foreign keys on, migrated to the newest version. */
export function openSqliteDatabase(path: string, options: SqliteOptions = {}): Database.Database {
  const db = new Database(path);
  try {
    // A new file reclaims the pages pruning frees (PRAGMA incremental_vacuum, see history-pruner.ts);
    // it can only be chosen before the first table. An older file reuses its free pages instead.
    if ((db.pragma('page_count', { simple: true }) as number) === 0) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT');
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  const newest = Math.max(0, ...applied);
  const known = Math.max(...migrations.map((m) => m.version));
  if (newest > known) throw new Error(`database schema version ${newest} is newer than this taskshard knows (${known}); upgrade taskshard`);
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      // The applied-at time is bookkeeping only; the scheduler never reads it.
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    })();
  }
}
