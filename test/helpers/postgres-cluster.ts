import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/bench-processes.js';
import { requireTool } from './tools.js';

/**
 * A throwaway PostgreSQL cluster for tests: Debian's `initdb` + `pg_ctl` in a
 * temporary directory, listening on 127.0.0.1 and a free port, trust
 * authentication (loopback only), removed by `stop()`. The server refuses to
 * run as root, so when the tests run as root every command runs as the
 * `postgres` user through `runuser -u postgres --`.
 *
 * ```ts
 * const pgBin = postgresBinDir();
 * describe.skipIf(pgBin === null)('on PostgreSQL', () => {
 *   let cluster: PostgresCluster;
 *   beforeAll(async () => { cluster = await startPostgresCluster(pgBin!); });
 *   afterAll(() => cluster.stop());
 * });
 * ```
 */
export interface PostgresCluster {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:PORT/NAME`; NAME defaults to the `postgres` database. */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): string;
  /** Runs SQL through psql on a database (for test setup and inspection); returns psql's unaligned output. */
  psql(database: string, sql: string): string;
  /** Stops the server (immediate mode) and removes its directory; idempotent. */
  stop(): void;
}

const binCandidates = ['/usr/lib/postgresql/15/bin/pg_ctl', '/usr/lib/postgresql/16/bin/pg_ctl', '/usr/lib/postgresql/17/bin/pg_ctl'];

/** The directory holding `initdb`, `pg_ctl` and `psql`, or null (test skipped) when PostgreSQL is not installed. */
export function postgresBinDir(): string | null {
  const pgCtl = requireTool('postgresql', binCandidates);
  return pgCtl === null ? null : pgCtl.slice(0, -'/pg_ctl'.length);
}

const asRoot = process.getuid?.() === 0;

function run(bin: string, args: readonly string[]): string {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, [...args]];
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const databaseName = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Initializes and starts a cluster; throws with the server log when it does not come up.
 * Tests run it without fsync (a test cluster never survives a power cut); `durable: true`
 * keeps PostgreSQL's defaults (fsync, synchronous commit), as benchmarks should.
 */
export async function startPostgresCluster(binDir: string, options: { durable?: boolean } = {}): Promise<PostgresCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'taskshard-pg-'));
  if (asRoot) {
    const pgUser = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const pgGroup = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, pgUser, pgGroup);
  }
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const port = await freePort();
  let running = false;
  const stop = (): void => {
    if (running) {
      running = false;
      try {
        run(join(binDir, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30']);
      } catch {
        // Already gone: nothing to stop; the directory is removed below either way.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run(join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync']);
    const fast = options.durable ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
    const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=100${fast}`;
    run(join(binDir, 'pg_ctl'), ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', serverOptions]);
    running = true;
  } catch (err) {
    let serverLog = '';
    try {
      serverLog = readFileSync(log, 'utf8');
    } catch {
      serverLog = '(no server log)';
    }
    stop();
    throw new Error(`could not start a PostgreSQL test cluster: ${(err as Error).message}\n${serverLog}`);
  }
  const url = (database = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const psql = (database: string, sql: string): string =>
    run(join(binDir, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-c', sql]);
  return {
    port,
    url,
    psql,
    createDatabase(name: string): string {
      if (!databaseName.test(name)) throw new Error(`createDatabase: "${name}" is not a plain lower-case database name`);
      psql('postgres', `CREATE DATABASE ${name}`);
      return url(name);
    },
    stop,
  };
}
