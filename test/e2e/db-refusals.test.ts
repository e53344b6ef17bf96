import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { runCliAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireTool } from '../helpers/tools.js';

/**
 * What the authority and the db commands refuse, and how they say it.
 *
 * The write proof at start (issue 11, item 7), on a file that really cannot
 * be written. Tests run as root, so permissions do not stop a write; the
 * file's immutable attribute (chattr +i, ext4 and most Linux file systems)
 * does, even for root. Where the file system has no such attribute the test
 * says so and skips.
 */
const chattr = requireTool('chattr', ['chattr', '/usr/bin/chattr', '/sbin/chattr']);

let dir: ReturnType<typeof tempDir>;
const immutable: string[] = [];
beforeEach(() => {
  dir = tempDir('taskshard-write-proof-');
});
afterEach(() => {
  // Always undone: an immutable file cannot be removed.
  for (const file of immutable.splice(0)) execFileSync(chattr!, ['-i', file]);
  dir.remove();
});

/** Makes `file` immutable; false (with the reason) where the file system refuses. */
function makeImmutable(file: string): true | string {
  try {
    execFileSync(chattr!, ['+i', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    immutable.push(file);
    return true;
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
  }
}

describe.skipIf(chattr === null)('the write proof at start', () => {
  it('an authority on a database file that cannot be written refuses to start (exit 1), naming the file; it never listens', async (ctx) => {
    const db = dir.file('locked.db');
    new SqliteStore(db).close(); // a real database, migrated, in WAL mode
    const probe = dir.file('probe');
    writeFileSync(probe, '');
    const supported = makeImmutable(probe);
    if (supported !== true) ctx.skip(`this file system has no immutable attribute: ${supported}`);
    expect(makeImmutable(db)).toBe(true);

    const result = await runCliAsync(['server', '--port', '0', '--db', db], { env: { ...process.env, TASKSHARD_TOKEN: '' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`taskshard server: cannot start: database ${db} is not writable: attempt to write a readonly database`);
    expect(result.stdout).not.toContain('taskshard authority listening');

    // The same file once writable again: it starts (the refusal was the file, not the database).
    execFileSync(chattr!, ['-i', db]);
    immutable.splice(immutable.indexOf(db), 1);
    const store = new SqliteStore(db);
    expect(store.scheduler.claim()).toBeGreaterThan(1);
    store.close();
  });
});

describe('taskshard db on PostgreSQL', () => {
  it.each([
    [['stats'], `with PostgreSQL, psql "postgres://***@db.example:5432/taskshard" -c '\\dt+' lists every table with its size`],
    [['backup', 'copy.dump'], 'with PostgreSQL, pg_dump --format=custom --file=FILE "postgres://***@db.example:5432/taskshard" makes an online copy (restore it with pg_restore)'],
    [['prune'], 'with PostgreSQL, the active authority prunes history by itself (--history-days)'],
  ])('db %s says what to use instead, exit 2, without the password', async (args, instead) => {
    const url = 'postgres://me:secret@db.example:5432/taskshard';
    const result = await runCliAsync(['db', ...args, '--db', url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`taskshard db ${args[0]}: --db postgres://***@db.example:5432/taskshard: taskshard db ${args[0]} works on a SQLite file; ${instead}`);
    expect(result.stderr).not.toContain('secret');
  });
});
