import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { WriterLock, type WriterHolder } from './sqlite-writer-lock.js';

/** What `taskshard db stats` reports. */
export interface DatabaseStats {
  readonly file: string;
  readonly fileBytes: number;
  readonly walBytes: number;
  readonly pageSize: number;
  readonly pages: number;
  readonly freePages: number;
  /** `incremental` on files created by this version (freed pages go back to the file system), else `none` (they are reused). */
  readonly autoVacuum: 'none' | 'full' | 'incremental';
  readonly schemaVersion: number;
  readonly rows: Readonly<Record<string, number>>;
  readonly cohorts: { readonly open: number; readonly resolved: number; readonly oldestResolvedAt: string | null };
  /** Who holds the writer lock now (a running authority), or null. */
  readonly writer: WriterHolder | null;
}

/** The tables people ask about first, in this order; every other table in the file follows by name (none is left out). */
const firstTables = ['cohorts', 'cohort_schemas', 'steps', 'leases', 'peers', 'events', 'memos', 'durations', 'cache_evidence'];
/** Bookkeeping, not history: the migration list and the writer lock's row. */
const bookkeeping = new Set(['schema_migrations', 'store_writer']);

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Reads the numbers with a read-only connection (safe next to a running authority). */
export function databaseStats(file: string): DatabaseStats {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const known = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[]));
    const rows: Record<string, number> = {};
    const order = [...firstTables.filter((t) => known.has(t)), ...[...known].filter((t) => !firstTables.includes(t) && !bookkeeping.has(t)).sort()];
    for (const t of order) rows[t] = db.prepare(`SELECT count(*) FROM "${t.replaceAll('"', '""')}"`).pluck().get() as number;
    const cohorts = known.has('cohorts')
      ? (db.prepare("SELECT count(*) FILTER (WHERE status = 'open') AS open, count(*) FILTER (WHERE status <> 'open') AS resolved, min(resolved_at_ms) AS oldest FROM cohorts").get() as { open: number; resolved: number; oldest: number | null })
      : { open: 0, resolved: 0, oldest: null };
    const autoVacuum = (['none', 'full', 'incremental'] as const)[db.pragma('auto_vacuum', { simple: true }) as number] ?? 'none';
    return {
      file,
      fileBytes: sizeOf(file),
      walBytes: sizeOf(`${file}-wal`),
      pageSize: db.pragma('page_size', { simple: true }) as number,
      pages: db.pragma('page_count', { simple: true }) as number,
      freePages: db.pragma('freelist_count', { simple: true }) as number,
      autoVacuum,
      schemaVersion: known.has('schema_migrations') ? ((db.prepare('SELECT max(version) FROM schema_migrations').pluck().get() as number | null) ?? 0) : 0,
      rows,
      cohorts: { open: cohorts.open, resolved: cohorts.resolved, oldestResolvedAt: cohorts.oldest === null ? null : new Date(cohorts.oldest).toISOString() },
      writer: WriterLock.holderOf(file),
    };
  } finally {
    db.close();
  }
}

export function formatDatabaseStats(s: DatabaseStats): string {
  const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
  const lines = [
    `database ${s.file} (schema version ${s.schemaVersion})`,
    `  size        ${mb(s.fileBytes)} (+ ${mb(s.walBytes)} WAL); ${s.pages} pages of ${s.pageSize} bytes, ${s.freePages} free; auto-vacuum ${s.autoVacuum}`,
    `  cohorts     ${s.cohorts.open} open, ${s.cohorts.resolved} finished${s.cohorts.oldestResolvedAt ? `, oldest finished ${s.cohorts.oldestResolvedAt}` : ''}`,
    ...Object.entries(s.rows).map(([t, n]) => `  ${t.padEnd(11)} ${n} rows`),
    `  writer      ${s.writer ? `${s.writer.role}, pid ${s.writer.pid} on ${s.writer.host}, since ${new Date(s.writer.startedAtMs).toISOString()}` : 'none (no authority has it open)'}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Copies a live database to `dest` with SQLite's online backup API (pages
 * copied in steps; the authority keeps writing meanwhile), then runs an
 * integrity check on the copy.
 */
export async function backupDatabase(file: string, dest: string): Promise<{ pages: number; bytes: number }> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  let pages = 0;
  try {
    const result = await db.backup(dest);
    pages = result.totalPages;
  } finally {
    db.close();
  }
  const copy = new Database(dest, { readonly: true, fileMustExist: true });
  try {
    const check = (copy.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
    if (check !== 'ok') throw new Error(`the copy ${dest} failed its integrity check: ${check}`);
  } finally {
    copy.close();
  }
  return { pages, bytes: sizeOf(dest) };
}
