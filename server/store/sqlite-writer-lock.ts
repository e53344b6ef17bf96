import { hostname } from 'node:os';
import Database from 'better-sqlite3';

/**
 * One writer per SQLite database file (DESIGN §11). The writer holds a lock
 * on a small side file, `<db>-writer.lock` (itself a SQLite database in
 * rollback-journal mode): an open `BEGIN IMMEDIATE` transaction, i.e. SQLite's
 * RESERVED lock, for as long as the store is open. The operating system drops
 * the lock when the process dies (it is an fcntl lock), so a crash never
 * leaves a stale lock and a restart is not delayed. While held, others can
 * still read the side file, where the holder wrote who it is (pid, host,
 * start time), so a second authority refuses to start naming the holder.
 *
 * The database itself stays open to readers (`taskshard db stats`,
 * `taskshard db backup` run next to a live authority).
 */
export interface WriterHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAtMs: number;
  /** What holds it: `authority`, `db prune`, ... */
  readonly role: string;
}

/** Another process (or store instance) already writes to this database file. */
export class WriterLockedError extends Error {
  readonly code = 'WRITER_LOCKED';
  constructor(
    readonly file: string,
    readonly holder: WriterHolder | null,
  ) {
    super(
      `database ${file} is in use by another writer${holder ? ` (${holder.role}, pid ${holder.pid} on ${holder.host}, since ${new Date(holder.startedAtMs).toISOString()})` : ''}; ` +
        'one authority per SQLite file: stop that one first, or give this one another --db',
    );
    this.name = 'WriterLockedError';
  }
}

/** The lock file that guards a database file. */
export function writerLockPath(dbPath: string): string {
  return `${dbPath}-writer.lock`;
}

export class WriterLock {
  private constructor(
    private readonly db: Database.Database,
    readonly holder: WriterHolder,
  ) {}

  /** Takes the lock for `dbPath` or throws {@link WriterLockedError} naming the holder. */
  static acquire(dbPath: string, role: string): WriterLock {
    const file = writerLockPath(dbPath);
    const db = new Database(file, { timeout: 0 });
    const me: WriterHolder = { pid: process.pid, host: hostname(), startedAtMs: Date.now(), role };
    try {
      db.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, started_at_ms INTEGER NOT NULL, role TEXT NOT NULL)');
      // Whoever gets RESERVED first writes its name, commits, and takes RESERVED again to hold it.
      db.exec('BEGIN IMMEDIATE');
      db.prepare('INSERT OR REPLACE INTO holder (id, pid, host, started_at_ms, role) VALUES (1, @pid, @host, @startedAtMs, @role)').run(me);
      db.exec('COMMIT');
      db.exec('BEGIN IMMEDIATE');
      return new WriterLock(db, me);
    } catch (err) {
      const busy = (err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED';
      const holder = busy ? readHolder(db) : null;
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
      if (busy) throw new WriterLockedError(dbPath, holder);
      throw new Error(`cannot take the writer lock ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Who holds the lock on `dbPath` now, or null when nobody does (the lock is free or was never taken). */
  static holderOf(dbPath: string): WriterHolder | null {
    let db: Database.Database;
    try {
      db = new Database(writerLockPath(dbPath), { timeout: 0, fileMustExist: true });
    } catch {
      return null;
    }
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      return null; // we could take it: nobody holds it
    } catch {
      return readHolder(db);
    } finally {
      db.close();
    }
  }

  release(): void {
    if (!this.db.open) return;
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.db.close();
  }
}

function readHolder(db: Database.Database): WriterHolder | null {
  try {
    const row = db.prepare('SELECT pid, host, started_at_ms AS startedAtMs, role FROM holder WHERE id = 1').get() as WriterHolder | undefined;
    return row ?? null;
  } catch {
    return null;
  }
}
