import { randomBytes } from 'node:crypto';
import websocket from '@fastify/websocket';
import type { WebsocketPluginOptions } from '@fastify/websocket';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { closeCodes } from '../shared/close-codes.js';
import { Authority, groupCommitMaxPeers } from './authority.js';
import { HistoryPruner } from './history-pruner.js';
import type { ServerConfig } from './config.js';
import { AnchoredClock, type Clock } from './core/clock.js';
import { defaultCoreConfig, type CoreConfig, type IdSource } from './core/core-types.js';
import { Scheduler } from './core/scheduler.js';
import type { Snapshot } from './core/records.js';
import type { SchedulerStore, Store } from './core/store-port.js';
import { registerApiRoutes } from './http/api-routes.js';
import { registerCacheEvidenceRoutes } from './http/cache-evidence-route.js';
import { Metrics } from './http/metrics.js';
import { LoopStalls } from './loop-stalls.js';
import { rememberRestoredSchemas } from './http/hello-input.js';
import { registerDashboardRoutes } from './http/dashboard-routes.js';
import { lazySchemaCompilers } from './http/fastify-compilers.js';
import { LiveHub, observeCommits, registerEventStream, touchedCohortIds } from './http/event-stream.js';
import { LifecycleLog } from './http/lifecycle-log.js';
import { prettyStream } from './http/log-format.js';
import { StdoutLog } from './log-stream.js';
import { ReadModelRunReader } from './http/run-reader.js';
import { registerRunRoutes } from './http/run-routes.js';
import { TrendCache } from './http/trend-cache.js';
import { registerUniverseRoute } from './http/universe-route.js';
import { registerRouteAccess } from './http/route-access.js';
import { answerPlainGetOfPeerPath, registerPeerBundleRoute } from './http/peer-bundle-route.js';
import { handlePeerSocket, LivenessMonitor, ServerSocket } from './http/peer-socket.js';
import { registerTaskDirectorRoute } from './http/task-director-socket.js';
import { registerUpgradeGuard } from './http/upgrade-guard.js';
import { releaseUpgradeRequest } from './http/ws-upgrade-release.js';

/** What `buildApp` wires together; tests reach in for the parts they drive. */
export interface AuthorityApp {
  readonly app: FastifyInstance;
  readonly authority: Authority;
  readonly store: Store;
  readonly metrics: Metrics;
  /** The Trends page's per-day cache (server/http/trend-cache.ts). */
  readonly trends: TrendCache;
  /**
   * Drain (no new leases), commit, close every socket (1001 going away, or
   * 1012 service restart on a planned handover to a standby), close the store.
   */
  close(options?: { readonly closeCode?: number; readonly reason?: string }): Promise<void>;
}

export interface AppDeps {
  /**
   * The store (its three parts over one database), opened by the caller, e.g.
   * with `openStore(config)` from `server/store/open-store.ts`. `buildApp` owns
   * it from here: it is closed by `close()`, or at once if start-up fails.
   */
  readonly store: Store;
  /** The authority's clock; default {@link systemClock} (monotonic, anchored on the wall clock at start). */
  readonly clock?: Clock;
  readonly ids?: IdSource;
  readonly logger?: FastifyServerOptions['logger'];
  /**
   * Where the JSON log goes when no `logger` is given (default: a new {@link StdoutLog}); the CLI
   * passes the one the leader election writes to as well, so the two never interleave partial lines.
   */
  readonly logStream?: StdoutLog;
  readonly version?: string;
  /** Called when a commit fails and the authority stops; the CLI exits non-zero. */
  readonly onFatal?: (err: Error) => void;
}

/**
 * The authority's clock on this machine: wall time read now, advanced by the
 * monotonic clock (core/clock.ts), so a wall step moves no deadline. Made
 * once per app, just before state is restored: a restart re-bases it.
 */
export function systemClock(): Clock {
  return new AnchoredClock({ wallMs: () => Date.now(), monotonicMs: () => performance.now() });
}

/**
 * URL-safe ids; the prefix says what they are. Cohort ids are random. Lease ids
 * are cheap (issue 17): a random prefix drawn once per process, then a counter,
 * so they stay unique across restarts and across authorities sharing a
 * database without a `randomBytes` call per grant (fencing never relies on a
 * lease id being secret: a report counts only from the peer that holds it).
 */
const leaseIdPrefix = `l_${randomBytes(9).toString('base64url')}_`;
let leasesNamed = 0;
export const randomIds: IdSource = {
  cohortId: () => `c_${randomBytes(9).toString('base64url')}`,
  leaseId: () => `${leaseIdPrefix}${(++leasesNamed).toString(36)}`,
};

/**
 * How often the retention sweep runs: every minute, or a twentieth of the
 * shortest window (`--retention`, `--memo-ttl`, `--idle-cohort-ttl`) when
 * that is sooner, at least every second. Memory then holds a window's worth
 * of cohorts and memos, not a window plus a minute: with the day bench's 20 s
 * windows a fixed minute kept 80 s of cohorts (11,800 instead of 3,000 at
 * 18,000 cohorts, heap snapshot), and the heap and RSS grew with them.
 */
export function sweepIntervalMsFor(config: Pick<ServerConfig, 'retentionHours' | 'memoTtlHours' | 'idleCohortHours'>): number {
  const shortestMs = Math.min(config.retentionHours, config.memoTtlHours, config.idleCohortHours) * 3600_000;
  return Math.min(defaultCoreConfig.sweepIntervalMs, Math.max(1_000, Math.round(shortestMs / 20)));
}

export function coreConfigFrom(config: ServerConfig): CoreConfig {
  return {
    ...defaultCoreConfig,
    sweepIntervalMs: sweepIntervalMsFor(config),
    leaseGraceMs: config.leaseGraceSec * 1000,
    memoTtlMs: config.memoTtlHours * 3600_000,
    defaultEstimateMs: config.defaultEstimateSec * 1000,
    stragglerFactor: config.stragglerFactor,
    stragglerMinMs: config.stragglerMinSec * 1000,
    cohortRetentionMs: config.retentionHours * 3600_000,
    idleCohortTtlMs: config.idleCohortHours * 3600_000,
    maxOpenCohortsPerSource: config.maxCohortsPerSource,
    maxStepsPerSource: config.maxStepsPerSource,
    maxLostLeases: config.maxLostLeases,
    maxLeaseAgeMs: config.maxLeaseAgeSec === null ? null : Math.round(config.maxLeaseAgeSec * 1000),
    pingIntervalMs: config.pingIntervalMs,
  };
}

/**
 * The repos of the cohorts the scheduler restored at start, for log lines about
 * them (the lifecycle log learns every other cohort from the batch that creates
 * it). Bounded by what was restored; answered from memory, never from the database.
 */
function restoredRepos(inner: SchedulerStore): { store: SchedulerStore; repoOf: (cohortId: string) => string | null } {
  const repos = new Map<string, string>();
  const store: SchedulerStore = {
    load(nowMs, retentionMs) {
      const remember = (snapshot: Snapshot): Snapshot => {
        for (const c of snapshot.cohorts) repos.set(c.cohortId, c.repo);
        return snapshot;
      };
      const loaded = inner.load(nowMs, retentionMs);
      return loaded instanceof Promise ? loaded.then(remember) : remember(loaded);
    },
    apply: (writes) => inner.apply(writes),
    recordCacheEvidence: (cohortId, evidence) => inner.recordCacheEvidence(cohortId, evidence),
    close: () => inner.close(),
  };
  const repoOf = (cohortId: string): string | null => repos.get(cohortId) ?? null;
  return { store, repoOf };
}

export async function buildApp(config: ServerConfig, deps: AppDeps): Promise<AuthorityApp> {
  const clock = deps.clock ?? systemClock();
  const store = deps.store;
  const coreConfig = coreConfigFrom(config);
  const scheduler = new Scheduler(coreConfig, deps.ids ?? randomIds);
  // The JSON log never blocks the event loop on a slow reader of stdout (server/log-stream.ts); pretty lines are for a terminal.
  const stdoutLog = deps.logger !== undefined || config.logFormat === 'pretty' ? null : (deps.logStream ?? new StdoutLog());
  const app = Fastify({
    logger: deps.logger ?? {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      stream: stdoutLog?.stream ?? prettyStream(process.stdout),
    },
    bodyLimit: 64 * 1024,
    // A request must arrive whole, and an HTTP connection may idle, this long (fastify's default is forever).
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs,
    // Per-request lines would drown the log at CI scale; routes log what matters.
    logController: new LogController({ disableRequestLogging: true }),
    // Routes validate with zod; fastify's ajv and fast-json-stringify load only if a route declares a schema.
    schemaController: { compilersFactory: lazySchemaCompilers() },
  });
  registerRouteAccess(app, config);
  const metrics = new Metrics(() => scheduler.counts(), deps.version ?? '0.0.0');
  // The longest event-loop stall per scrape, split into the authority's own CPU time and the machine's.
  const stalls = new LoopStalls();
  stalls.register(metrics.registry);
  if (stdoutLog !== null) {
    stdoutLog.register(metrics.registry);
    stdoutLog.reportTo(app.log);
  }
  stalls.start();
  const live = new LiveHub();
  const runs = new ReadModelRunReader(store.readModel);
  const trends = new TrendCache(runs);
  const restored = restoredRepos(store.scheduler);
  const lifecycle = new LifecycleLog(app.log, restored.repoOf);
  const observed = observeCommits(
    restored.store,
    (writes) => {
      lifecycle.observe(writes);
      metrics.observeWrites(writes, clock.now());
      live.publish(writes);
      // Without a browser on the event stream or trends ever asked for, a commit costs neither (no grouping of its writes).
      if (!trends.holdsNothing) trends.invalidate(touchedCohortIds(writes));
    },
    (err) => app.log.error({ err }, 'commit listener failed'),
  );
  const authority = new Authority(
    scheduler,
    observed,
    clock,
    app.log,
    metrics,
    coreConfig.cohortRetentionMs,
    (err) => {
      deps.onFatal?.(err);
    },
    { windowMs: config.groupCommitMs, maxPeers: groupCommitMaxPeers },
  );
  const liveness = new LivenessMonitor(config.pingIntervalMs);

  // A SQLite file deleted or replaced under us: fatal at once, not only at the next commit (which refuses too).
  const unwatch =
    store.watch?.((err) => {
      app.log.fatal({ err, db: store.location }, 'database lost; stopping the authority');
      deps.onFatal?.(err);
    }) ?? (() => undefined);
  try {
    rememberRestoredSchemas((await authority.start()).cohorts);
  } catch (err) {
    unwatch();
    await store.close();
    liveness.stop();
    throw err;
  }

  await app.register(websocket, {
    // ServerSocket: a WebSocket with a field for its connection, so socket listeners are shared functions (socket-session.ts).
    // ws's types want the module's WebSocket with its static members; ws itself only constructs the class.
    options: { maxPayload: config.maxPayloadBytes, perMessageDeflate: false, WebSocket: ServerSocket as unknown as NonNullable<NonNullable<WebsocketPluginOptions['options']>['WebSocket']> },
    // Sockets are closed by close() below with a reason; the plugin need not do it.
    preClose: (done) => done(),
  });

  const historyMs = config.historyDays * 86_400_000;
  const pruner = new HistoryPruner({
    retention: store.retention,
    ...(store.reclaim ? { reclaim: (maxPages: number) => store.reclaim!(maxPages) } : {}),
    clock,
    log: app.log,
    historyMs,
    retentionMs: coreConfig.cohortRetentionMs,
    // A pass a minute, or ten per history window when that is shorter (short windows in tests and benchmarks).
    intervalMs: Math.min(60_000, Math.max(1_000, Math.max(historyMs, coreConfig.cohortRetentionMs) / 10)),
  });
  pruner.start();

  registerUpgradeGuard(app, { config, metrics, log: app.log });
  // One deps object for every connection (each connection keeps a reference to it).
  const socketDeps = { authority, metrics, config, clock, log: app.log, liveness, version: deps.version ?? '0.0.0' };
  app.register(async (scope) => {
    // Token, Origin, Host and connection caps are checked by the upgrade guard before the upgrade: no WebSocket ever exists for a refused one.
    scope.route({
      method: 'GET',
      url: '/v1/peer',
      config: { access: 'peer' },
      // A plain GET (a browser, curl) gets 426 and a sentence saying what to do instead.
      handler: answerPlainGetOfPeerPath,
      wsHandler: (socket, request) => {
        releaseUpgradeRequest(socket, request);
        handlePeerSocket(socket, socketDeps);
      },
    });
    // The original Task Director client's protocol; same guard (the old client sends no token: see docs/migrating-from-task-director.md).
    registerTaskDirectorRoute(scope, socketDeps);
  });

  registerPeerBundleRoute(app);
  registerApiRoutes(app, {
    authority,
    readModel: store.readModel,
    runs,
    metrics,
    config,
    version: deps.version ?? '0.0.0',
    startedAtMs: Date.now(),
    storeHealth: () => store.health(),
  });

  registerRunRoutes(app, { runs, readModel: store.readModel, clock, trends });
  registerCacheEvidenceRoutes(app, {
    runs,
    scheduler: store.scheduler,
    readModel: store.readModel,
    config,
    clock,
    log: app.log,
    onRecorded: (cohortId, evidence) => live.publishEvidence(cohortId, evidence),
  });
  registerUniverseRoute(app, { runs, store: observed, config, clock, log: app.log });
  registerEventStream(app, live);
  registerDashboardRoutes(app, config);

  let closed: Promise<void> | null = null;
  const close = (options: { readonly closeCode?: number; readonly reason?: string } = {}): Promise<void> => {
    closed ??= (async () => {
      unwatch();
      stalls.stop();
      authority.drain();
      await pruner.stop();
      await authority.stop();
      liveness.stop();
      for (const client of app.websocketServer?.clients ?? []) client.close(options.closeCode ?? closeCodes.goingAway, options.reason ?? 'authority shutting down');
      await app.close();
      await store.close();
    })();
    return closed;
  };
  return { app, authority, store, metrics, trends, close };
}
