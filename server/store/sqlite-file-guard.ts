import { statSync } from 'node:fs';

/**
 * Notices when the database file is deleted or replaced under a running
 * authority (DESIGN §11). SQLite keeps writing to the inode it opened, so a
 * file deleted (or swapped by a restore) would silently take every later
 * commit into a file nobody will ever read. The guard remembers the file's
 * device and inode at open and compares them before every commit and on a
 * timer; a difference is fatal.
 */
export class DatabaseFileLostError extends Error {
  readonly code = 'DATABASE_FILE_LOST';
  constructor(
    readonly file: string,
    readonly why: 'deleted' | 'replaced',
  ) {
    super(`database file ${file} was ${why} while the authority had it open; stopping before acknowledging any work into a file nobody will read`);
    this.name = 'DatabaseFileLostError';
  }
}

export class SqliteFileGuard {
  private readonly dev: number;
  private readonly ino: number;
  private lost: DatabaseFileLostError | null = null;

  constructor(readonly file: string) {
    const st = statSync(file);
    this.dev = st.dev;
    this.ino = st.ino;
  }

  /** Throws {@link DatabaseFileLostError} once the path no longer names the file that was opened. */
  check(): void {
    if (this.lost) throw this.lost;
    let st;
    try {
      st = statSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.lost = new DatabaseFileLostError(this.file, 'deleted');
      throw this.lost;
    }
    if (st.dev !== this.dev || st.ino !== this.ino) {
      this.lost = new DatabaseFileLostError(this.file, 'replaced');
      throw this.lost;
    }
  }

  /** The loss found so far, or null while the file is the one opened. */
  get failure(): DatabaseFileLostError | null {
    return this.lost;
  }
}
