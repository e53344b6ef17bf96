import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { AuthorityApp } from '../server/app.js';
import type { Store } from '../server/core/store-port.js';
import type { LeaderElection } from '../server/ha/leader-election.js';
import type { PostgresStore } from '../server/store/postgres/postgres-store.js';
import { ConfigError, isLoopback, parseServerConfig, type ServerConfigInput } from '../server/config.js';
import { applyEnvOptions, showEnvInHelp } from './env-options.js';
import { exitInvalid } from './exit-codes.js';
import { describeStoreError } from './native-module-hint.js';
import { packageInfo } from './package-info.js';
import { collect, intOption, numberOption } from './option-parsers.js';
import { applyHeapSizing, defaultHeapGrowthPercent, heapSizingFields, nodeHeapFlags, planHeapSizing, type HeapSizing } from './heap-sizing.js';

/** Config keys as the user knows them, for error messages. */
const flagOf: Record<string, string> = {
  host: '--host',
  port: '--port',
  dbPath: '--db',
  leaseGraceSec: '--lease-grace',
  memoTtlHours: '--memo-ttl',
  logLevel: '--log-level',
  logFormat: '--log-format',
  peerToken: 'TASKSHARD_TOKEN / --token-file',
  adminToken: 'TASKSHARD_ADMIN_TOKEN',
  maxPayloadBytes: '--max-payload-bytes',
  synchronous: '--sync',
  groupCommitMs: '--group-commit',
  stragglerFactor: '--straggler-factor',
  retentionHours: '--retention',
  historyDays: '--history-days',
  maxLostLeases: '--max-lost-leases',
  maxLeaseAgeSec: '--max-lease-age',
  pingIntervalMs: '--ping-interval',
  allowedOrigins: '--allowed-origin',
  helloTimeoutMs: '--hello-timeout',
  maxConnections: '--max-connections',
  maxConnectionsPerAddress: '--max-connections-per-address',
  requestTimeoutMs: '--request-timeout',
  maxCohortsPerSource: '--max-cohorts-per-source',
  maxStepsPerSource: '--max-steps-per-source',
  idleCohortHours: '--idle-cohort-ttl',
  leaderRenewSec: '--leader-renew',
  leaderTtlSec: '--leader-ttl',
  authorityId: '--authority-id',
};

interface ServerFlags {
  host: string;
  port: number;
  db: string;
  leaseGrace: number;
  memoTtl: number;
  logLevel: string;
  logFormat: string;
  tokenFile?: string;
  insecureBind?: boolean;
  maxPayloadBytes?: number;
  sync: string;
  groupCommit: number;
  stragglerFactor: number;
  retention: number;
  historyDays: number;
  maxLostLeases: number;
  maxLeaseAge?: number;
  pingInterval: number;
  allowedOrigin: string[];
  helloTimeout: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  requestTimeout: number;
  maxCohortsPerSource: number;
  maxStepsPerSource: number;
  idleCohortTtl: number;
  leaderRenew: number;
  leaderTtl: number;
  authorityId?: string;
  heapGrowthPercent: number;
}

export function registerServerCommand(program: Command): void {
  const command = program
    .command('server')
    .description('run the authority: WebSocket endpoint for peers, REST API, metrics, embedded SQLite')
    .option('--host <host>', 'address to bind (without a peer token only loopback is allowed)', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', intOption(0, 65535), 8080)
    .addOption(new Option('--db <file|url>', 'SQLite database file (created if missing), or a postgres:// URL (several authorities may share it)').env('TASKSHARD_DB').default('./taskshard.db'))
    .option('--lease-grace <sec>', 'how long a dropped peer keeps its lease', numberOption(0, 86400), 60)
    .option('--memo-ttl <hours>', 'how long a success for an exact source state is reused', numberOption(0, 8760), 24)
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .addOption(new Option('--log-format <format>', 'json lines (for log shippers) or pretty text (for a terminal)').choices(['json', 'pretty']).default('json'))
    .option('--token-file <file>', 'file holding the peer token (without it, the token is the value of TASKSHARD_TOKEN)')
    .option('--insecure-bind', 'allow a non-loopback --host without a peer token')
    .option('--max-payload-bytes <n>', 'largest frame accepted (bigger closes with 1009)', intOption(1024, 64 * 1024 * 1024))
    .addOption(new Option('--sync <mode>', 'SQLite durability: normal survives a process crash, full also power loss').choices(['normal', 'full']).default('normal'))
    .option('--group-commit <ms>', 'while at most 32 peers are connected, commit the inputs of this many ms in one transaction (nothing is acknowledged before its commit); 0 commits every event-loop turn', numberOption(0, 1000), 0)
    .option('--straggler-factor <x>', 'start a backup copy after x times the estimate (0 disables)', numberOption(0, 100), 2)
    .option('--retention <hours>', 'how long finished cohorts stay joinable and in memory', numberOption(0, 8760), 24)
    .option('--history-days <days>', 'delete finished cohorts (steps, leases, peers, events, log tails) from the database this long after they finished; durations and live memos stay', numberOption(0, 3650), 14)
    .option('--max-lost-leases <n>', 'leases of a step whose holder died while running it (grace expired) before the step is failed as a poison step', intOption(1, 1_000_000), 3)
    .option('--max-lease-age <sec>', 'end a lease whose holder has not finished it after this long and lease the step again (default: 4 × the step\'s estimate, at least 10 min, or 2 h without one)', numberOption(1, 30 * 24 * 3600))
    .option('--ping-interval <sec>', 'ping every peer this often; one silent for two intervals is dropped', numberOption(0.1, 600), 15)
    .option('--allowed-origin <origin>', 'a browser origin (https://host[:port]) besides the authority\'s own that may open a WebSocket; repeatable', collect, [])
    .option('--hello-timeout <sec>', 'close a connection that has not sent its hello (or INIT) within this (1008 HELLO_TIMEOUT)', numberOption(0.1, 3600), 10)
    .option('--max-connections <n>', 'open WebSocket connections in all; more get HTTP 503', intOption(1, 1_000_000), 10_000)
    .option('--max-connections-per-address <n>', 'open WebSocket connections from one remote address; more get HTTP 503', intOption(1, 1_000_000), 1_000)
    .option('--max-cohorts-per-source <n>', 'open cohorts one repo + cache id may have; a hello that would create more gets QUOTA_EXCEEDED', intOption(1, 1_000_000), 256)
    .option('--max-steps-per-source <n>', 'steps in the open cohorts of one repo + cache id, likewise', intOption(1, 100_000_000), 100_000)
    .option('--idle-cohort-ttl <hours>', 'abandon an open cohort with no active peer (nobody joined, or everyone left) after this', numberOption(0, 8760), 1)
    .option('--request-timeout <sec>', 'an HTTP request must arrive whole, and an HTTP connection may idle, this long', numberOption(0.1, 3600), 30)
    .option('--leader-renew <sec>', 'with PostgreSQL: renew the leader lease this often', numberOption(0.1, 600), 2)
    .option('--leader-ttl <sec>', 'with PostgreSQL: a leader lease not renewed for this long lets a standby take over', numberOption(0.5, 3600), 10)
    .option('--authority-id <id>', 'with PostgreSQL: this authority\'s name, shown by standbys (default host-pid)')
    .option('--heap-growth-percent <n>', 'after a full GC, let the V8 heap grow by this percent of what survived before the next one (0: V8\'s own heuristic, up to 4x); see the README, operations', intOption(0, 1000), defaultHeapGrowthPercent)
    .addHelpText(
      'after',
      [
        '',
        'Every option can come from the environment as TASKSHARD_<OPTION> (shown with each); a flag wins over',
        'its variable. Boolean variables take true/false (1/0, yes/no). Also:',
        '  TASKSHARD_TOKEN        peer token (Bearer on /v1/peer and the read API)',
        '  TASKSHARD_ADMIN_TOKEN  admin token (cancel a cohort, retry a step)',
        '',
      ].join('\n'),
    )
    .action(async (_flags: ServerFlags, cmd: Command) => {
      const problems = applyEnvOptions(cmd, process.env, ['--allowed-origin']);
      if (problems.length > 0) {
        process.stderr.write(`taskshard server: invalid configuration\n${problems.map((l) => `  ${l}`).join('\n')}\n`);
        process.exitCode = exitInvalid;
        return;
      }
      const flags = cmd.opts<ServerFlags>();
      const source = cmd.getOptionValueSource('heapGrowthPercent');
      let heap: HeapSizing;
      try {
        heap = planHeapSizing({ value: flags.heapGrowthPercent, source: source === 'cli' ? 'cli' : source === 'env' ? 'env' : 'default' }, nodeHeapFlags(process.execArgv, process.env.NODE_OPTIONS));
      } catch (err) {
        process.stderr.write(`taskshard server: invalid configuration\n  ${(err as Error).message}\n`);
        process.exitCode = exitInvalid;
        return;
      }
      // Before the server's modules load: V8 sizes the heap after each GC from then on.
      applyHeapSizing(heap);
      await runServer(flags, heap);
    });
  showEnvInHelp(command);
}

function readTokenFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
}

async function runServer(flags: ServerFlags, heap: HeapSizing): Promise<void> {
  let config;
  try {
    const input: ServerConfigInput = {
      host: flags.host,
      port: flags.port,
      dbPath: flags.db,
      leaseGraceSec: flags.leaseGrace,
      memoTtlHours: flags.memoTtl,
      logLevel: flags.logLevel as ServerConfigInput['logLevel'],
      logFormat: flags.logFormat as ServerConfigInput['logFormat'],
      peerToken: flags.tokenFile ? readTokenFile(flags.tokenFile) : (process.env.TASKSHARD_TOKEN ?? null) || null,
      adminToken: process.env.TASKSHARD_ADMIN_TOKEN || null,
      insecureBind: flags.insecureBind ?? false,
      synchronous: flags.sync as 'normal' | 'full',
      groupCommitMs: flags.groupCommit,
      stragglerFactor: flags.stragglerFactor,
      retentionHours: flags.retention,
      historyDays: flags.historyDays,
      maxLostLeases: flags.maxLostLeases,
      ...(flags.maxLeaseAge !== undefined ? { maxLeaseAgeSec: flags.maxLeaseAge } : {}),
      pingIntervalMs: Math.round(flags.pingInterval * 1000),
      allowedOrigins: flags.allowedOrigin,
      helloTimeoutMs: Math.round(flags.helloTimeout * 1000),
      maxConnections: flags.maxConnections,
      maxConnectionsPerAddress: flags.maxConnectionsPerAddress,
      requestTimeoutMs: Math.round(flags.requestTimeout * 1000),
      maxCohortsPerSource: flags.maxCohortsPerSource,
      maxStepsPerSource: flags.maxStepsPerSource,
      idleCohortHours: flags.idleCohortTtl,
      leaderRenewSec: flags.leaderRenew,
      leaderTtlSec: flags.leaderTtl,
      ...(flags.authorityId !== undefined ? { authorityId: flags.authorityId } : {}),
      ...(flags.maxPayloadBytes ? { maxPayloadBytes: flags.maxPayloadBytes } : {}),
    };
    config = parseServerConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) {
      const lines = err.problems.map((p) => p.replace(/^(\w+)(?=[:.[])/, (key) => flagOf[key] ?? key));
      process.stderr.write(`taskshard server: invalid configuration\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
      process.exitCode = exitInvalid;
      return;
    }
    throw err;
  }

  // Loaded here, not at the top: only `taskshard server` loads fastify and better-sqlite3; the PostgreSQL driver and leader election only with a postgres:// --db.
  const { buildApp } = await import('../server/app.js');
  const { isPostgresUrl, openStore } = await import('../server/store/open-store.js');
  const { prettyStream } = await import('../server/http/log-format.js');
  const { StdoutLog } = await import('../server/log-stream.js');
  // One JSON log stream for the authority and its leader election (PostgreSQL), written without blocking the event loop.
  const logStream = config.logFormat === 'pretty' ? null : new StdoutLog();
  const onFatal = (): void => {
    process.exitCode = 1;
    void shutdown('fatal');
  };
  const start = async (store: Store): Promise<AuthorityApp> => {
    const app = await buildApp(config, { store, version: packageInfo().version, onFatal, ...(logStream ? { logStream } : {}) });
    try {
      await app.app.listen({ host: config.host, port: config.port });
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
    return app;
  };

  let built: AuthorityApp | null = null;
  let election: LeaderElection | null = null;
  let shuttingDown = false;
  async function shutdown(signal: string): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    const log = built?.app.log;
    log?.info({ signal }, 'draining: no new leases, committing, closing connections');
    const force = setTimeout(() => {
      process.stderr.write('taskshard server: drain took too long; exiting\n');
      process.exit(1);
    }, config!.shutdownTimeoutMs);
    force.unref();
    if (election !== null && signal !== 'fatal') await election.stop();
    else if (built !== null) await built.close();
    else await election?.stop();
    clearTimeout(force);
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  try {
    const store = await openStore(config);
    if (isPostgresUrl(config.dbPath)) {
      const { LeaderElection } = await import('../server/ha/leader-election.js');
      election = new LeaderElection({ config, store: store as PostgresStore, logger: { level: config.logLevel, stream: logStream?.stream ?? prettyStream(process.stdout) }, startActive: () => start(store), onFatal });
      built = await election.run();
      if (built === null) {
        await store.close();
        return;
      }
    } else {
      built = await start(store);
    }
  } catch (err) {
    process.stderr.write(`taskshard server: cannot start: ${describeStoreError(err)}\n`);
    // Another authority holds the SQLite file: a usage error (exit 2), not a crash.
    process.exitCode = (err as { code?: string }).code === 'WRITER_LOCKED' ? exitInvalid : 1;
    await (election !== null ? election.stop() : built?.close())?.catch(() => undefined);
    return;
  }
  const { app } = built;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  app.log.info(heapSizingFields(heap), 'V8 heap sizing');
  app.log.info({ url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`, db: built.store.location }, 'taskshard authority listening');
  if (config.peerToken === null) {
    app.log.warn({ host: config.host }, isLoopback(config.host) ? 'no peer token: accepting peers without auth on loopback only' : 'no peer token and --insecure-bind: anyone who can reach this port can join');
  }
  if (config.adminToken === null) app.log.info('admin API disabled (set TASKSHARD_ADMIN_TOKEN to enable cancel and retry)');
}
