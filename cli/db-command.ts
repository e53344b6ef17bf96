import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { applyEnvOptions } from './env-options.js';
import { exitInvalid } from './exit-codes.js';
import { describeStoreError } from './native-module-hint.js';
import { numberOption } from './option-parsers.js';

/**
 * `taskshard db stats | backup FILE | prune`: operating the authority's
 * SQLite database (README "Operations").
 * - `stats` and `backup` only read: they run next to a live authority
 *   (`backup` is online, through SQLite's backup API, and checks the copy).
 * - `prune` writes, so it takes the file's writer lock: with an authority
 *   running it is refused (exit 2) — the authority prunes by itself.
 * The server's dependencies load only when a `db` command runs.
 */
interface DbFlags {
  db: string;
  json?: boolean;
}

const dbOption = (): Option => new Option('--db <file>', 'the authority\'s SQLite database file').env('TASKSHARD_DB').default('./taskshard.db');

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('inspect, back up and prune the authority\'s SQLite database');
  db.command('stats')
    .description('row counts per table, file size and free pages, and who writes the file')
    .addOption(dbOption())
    .option('--json', 'one JSON object instead of text')
    .action(async (_f: DbFlags, cmd: Command) => run(cmd, async (flags) => stats(flags)));
  db.command('backup')
    .description('copy the database to FILE while the authority runs (SQLite online backup), then check the copy')
    .argument('<file>', 'where to write the copy (must not exist)')
    .addOption(dbOption())
    .action(async (file: string, _f: DbFlags, cmd: Command) => run(cmd, async (flags) => backup(flags, file)));
  db.command('prune')
    .description('delete history older than --history-days now (the authority does this by itself; refused while one runs)')
    .addOption(dbOption())
    .option('--history-days <days>', 'keep finished cohorts this long', numberOption(0, 3650), 14)
    .option('--retention <hours>', 'never prune what the authority would still hold in memory', numberOption(0, 8760), 24)
    .action(async (_f: DbFlags, cmd: Command) => run(cmd, async (flags) => prune(flags as DbFlags & { historyDays: number; retention: number })));
}

class UsageError extends Error {}

/**
 * The db commands read and write a SQLite file. On PostgreSQL the database's
 * own tools do each job better (and online); this says which, per command,
 * with the URL's credentials masked.
 */
function postgresInstead(command: string, url: string): string {
  const shown = url.replace(/\/\/[^@/]*@/, '//***@');
  const instead: Record<string, string> = {
    stats: `psql "${shown}" -c '\\dt+' lists every table with its size, and SELECT pg_size_pretty(pg_database_size(current_database())) gives the whole database's`,
    backup: `pg_dump --format=custom --file=FILE "${shown}" makes an online copy (restore it with pg_restore)`,
    prune: 'the active authority prunes history by itself (--history-days), in bounded batches',
  };
  return `--db ${shown}: taskshard db ${command} works on a SQLite file; with PostgreSQL, ${instead[command] ?? 'use psql and pg_dump'}`;
}

async function run(cmd: Command, action: (flags: DbFlags) => Promise<void>): Promise<void> {
  const problems = applyEnvOptions(cmd, process.env);
  if (problems.length > 0) {
    process.stderr.write(`taskshard db ${cmd.name()}: invalid options\n${problems.map((l) => `  ${l}`).join('\n')}\n`);
    process.exitCode = exitInvalid;
    return;
  }
  const flags = cmd.opts<DbFlags>();
  try {
    if (/^postgres(ql)?:\/\//i.test(flags.db)) throw new UsageError(postgresInstead(cmd.name(), flags.db));
    if (!existsSync(flags.db)) throw new UsageError(`--db ${flags.db}: no such database file`);
    await action(flags);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code === 'WRITER_LOCKED';
    process.stderr.write(`taskshard db ${cmd.name()}: ${describeStoreError(err)}\n`);
    process.exitCode = usage ? exitInvalid : 1;
  }
}

async function stats(flags: DbFlags): Promise<void> {
  const { databaseStats, formatDatabaseStats } = await import('../server/store/sqlite-stats.js');
  const s = databaseStats(flags.db);
  process.stdout.write(flags.json ? `${JSON.stringify(s)}\n` : formatDatabaseStats(s));
}

async function backup(flags: DbFlags, file: string): Promise<void> {
  if (existsSync(file)) throw new UsageError(`${file} exists; remove it or choose another name`);
  const { backupDatabase } = await import('../server/store/sqlite-stats.js');
  const result = await backupDatabase(flags.db, file);
  process.stdout.write(`backed up ${flags.db} to ${file}: ${result.pages} pages, ${result.bytes} bytes, integrity ok\n`);
}

async function prune(flags: DbFlags & { historyDays: number; retention: number }): Promise<void> {
  const { SqliteStore } = await import('../server/store/sqlite-store.js');
  const { HistoryPruner } = await import('../server/history-pruner.js');
  const store = new SqliteStore(flags.db, { role: 'taskshard db prune' });
  try {
    const pruner = new HistoryPruner({
      retention: store.retention,
      reclaim: (maxPages) => store.reclaim(maxPages),
      clock: { now: () => Date.now() },
      log: { info: () => undefined, error: () => undefined },
      historyMs: flags.historyDays * 86_400_000,
      retentionMs: flags.retention * 3_600_000,
      gapMs: 0,
    });
    const pass = await pruner.runPass();
    const r = pass.removed;
    process.stdout.write(
      `pruned cohorts finished before ${new Date(pass.cutoffMs).toISOString()}: ${r.cohorts} cohorts, ${r.steps} steps, ${r.leases} leases, ${r.peers} peers, ${r.events} events, ${r.successes} success rows; ${pass.pagesFreed} pages returned to the file system\n`,
    );
  } finally {
    store.close();
  }
}
