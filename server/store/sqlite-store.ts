import type Database from 'better-sqlite3';
import type { Store, StoreHealth } from '../core/store-port.js';
import { openSqliteDatabase, type SqliteOptions } from './sqlite-database.js';
import { WalCheckpointer, type CheckpointReport } from './sqlite-checkpointer.js';
import { SqliteFileGuard } from './sqlite-file-guard.js';
import { SqliteReadModel } from './sqlite-read-model.js';
import { pruneSql, SqliteRetention } from './sqlite-retention.js';
import { SqliteSchedulerStore } from './sqlite-scheduler-store.js';
import { WriterLock } from './sqlite-writer-lock.js';

/**
 * The embedded store: the three parts of the store contract over one
 * better-sqlite3 connection in WAL mode. Every batch of writes is one
 * transaction; the transport sends no frame about a transition before its
 * batch has committed.
 *
 * One writer per file (DESIGN §11): opening takes the file's writer lock
 * (sqlite-writer-lock.ts) or throws `WriterLockedError` naming the holder;
 * then it proves the database writable (a write in a transaction) before
 * anything else. Before every commit, and on a timer (`watch`), it checks
 * that the path still names the file it opened (sqlite-file-guard.ts).
 */
export interface SqliteStoreOptions extends SqliteOptions {
  /** Who takes the writer lock, shown to a second writer that is refused. Default `authority`. */
  readonly role?: string;
  /**
   * Run WAL checkpoints in a worker thread instead of inside commits
   * (sqlite-checkpointer.ts); the authority does, so no commit on its event
   * loop copies and fsyncs the WAL. Default false (tools and tests).
   */
  readonly checkpointInBackground?: boolean;
  /** Called after each background checkpoint that found frames. */
  readonly onCheckpoint?: (report: CheckpointReport) => void;
  /** WAL frames after which a background checkpoint finishes under the commit gate. Default 4,000. */
  readonly checkpointFinishFrames?: number;
}

export class SqliteStore implements Store {
  readonly db: Database.Database;
  readonly scheduler: SqliteSchedulerStore;
  readonly readModel: SqliteReadModel;
  readonly retention: SqliteRetention;
  private readonly lock: WriterLock | null;
  private readonly guard: SqliteFileGuard | null;
  private readonly checkpointer: WalCheckpointer | null = null;

  constructor(readonly location: string, options: SqliteStoreOptions = {}) {
    const onDisk = location !== ':memory:' && !location.startsWith('file:');
    this.lock = onDisk ? WriterLock.acquire(location, options.role ?? 'authority') : null;
    try {
      this.db = openSqliteDatabase(location, options);
    } catch (err) {
      this.lock?.release();
      throw err;
    }
    this.guard = onDisk ? new SqliteFileGuard(location) : null;
    if (onDisk && options.checkpointInBackground === true) {
      this.db.pragma('wal_autocheckpoint = 0');
      // The first commit after the WAL is rewound truncates it to this: the file on disk shows the WAL in use, not its largest ever.
      this.db.pragma(`journal_size_limit = ${32 * 1024 * 1024}`);
      this.checkpointer = new WalCheckpointer({
        path: location,
        synchronous: options.synchronous ?? 'normal',
        ...(options.onCheckpoint ? { onCheckpoint: options.onCheckpoint } : {}),
        ...(options.checkpointFinishFrames === undefined ? {} : { finishFrames: options.checkpointFinishFrames }),
        pruneSql,
        onError: (err) => {
          // Commits checkpoint again (slower, never unsafe); said on stderr, not hidden.
          if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
          process.emitWarning(`${err.message}; checkpoints run inside commits again`, { code: 'TASKSHARD_CHECKPOINT' });
        },
      });
    }
    this.scheduler = new SqliteSchedulerStore(this.db, () => this.guard?.check(), this.checkpointer);
    this.readModel = new SqliteReadModel(this.db);
    this.retention = new SqliteRetention(this.db, () => this.guard?.check(), this.checkpointer);
    try {
      // The write proof: claiming the writer epoch is a write in a transaction.
      this.scheduler.claim();
    } catch (err) {
      this.close();
      throw new Error(`database ${location} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }

  /** `PRAGMA integrity_check`: "ok" when the file is sound. */
  integrityCheck(): string {
    return (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  }

  /**
   * Hands up to `maxPages` free pages back to the file system (files created
   * with incremental auto-vacuum); returns how many. With background
   * checkpoints it runs on their worker's connection under the commit gate,
   * off the event loop; without, on this connection.
   */
  reclaim(maxPages: number): number | Promise<number> {
    const checkpointer = this.checkpointer;
    // The authority's: on the background worker's connection, off the event loop.
    if (checkpointer?.running === true) {
      this.guard?.check();
      return checkpointer.run({ kind: 'reclaim', maxPages });
    }
    if ((this.db.pragma('auto_vacuum', { simple: true }) as number) !== 2) return 0;
    if (checkpointer !== null && !checkpointer.enter()) return checkpointer.free().then(() => this.reclaim(maxPages));
    try {
      const before = this.db.pragma('freelist_count', { simple: true }) as number;
      if (before === 0) return 0;
      this.guard?.check();
      this.db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`);
      return before - (this.db.pragma('freelist_count', { simple: true }) as number);
    } finally {
      checkpointer?.leave();
    }
  }

  health(): StoreHealth {
    const lost = this.guard?.failure ?? null;
    if (!this.db.open) return { kind: 'sqlite', status: 'closed', location: this.location };
    return lost ? { kind: 'sqlite', status: 'lost', location: this.location, detail: lost.message } : { kind: 'sqlite', status: 'ok', location: this.location };
  }

  watch(onLost: (err: Error) => void, intervalMs = 1000): () => void {
    if (this.guard === null) return () => undefined;
    const guard = this.guard;
    const timer = setInterval(() => {
      try {
        guard.check();
      } catch (err) {
        clearInterval(timer);
        onLost(err as Error);
      }
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  close(): void {
    // The checkpointer's connection first: the last connection to close checkpoints the rest and removes the WAL.
    this.checkpointer?.stop();
    if (this.db.open) this.db.close();
    this.lock?.release();
  }
}
