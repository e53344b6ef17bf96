import { z } from 'zod';
import { formatProblem, problemsFromZod } from '../shared/zod-issues.js';

/** A browser origin as it appears in an `Origin` header: `https://ci.example.com[:port]`, no path. */
const originSchema = z
  .string()
  .max(512)
  .refine((value) => {
    try {
      const url = new URL(value);
      const bare = url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '' && url.password === '';
      return (url.protocol === 'http:' || url.protocol === 'https:') && bare && !value.endsWith('#') && !value.endsWith('?');
    } catch {
      return false;
    }
  }, 'must be an origin: http(s)://host[:port], with no path')
  .transform((value) => new URL(value).origin);

/**
 * Server configuration: parsed once with zod, frozen, and rejected at
 * start-up with every problem listed. CLI flags and environment variables are
 * mapped onto this shape by `cli/server-command.ts`.
 */
export const serverConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** SQLite file; `:memory:` for a throwaway authority. */
    dbPath: z.string().min(1).default('./taskshard.db'),
    leaseGraceSec: z.number().min(0).max(24 * 3600).default(60),
    memoTtlHours: z.number().min(0).max(24 * 365).default(24),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `json` lines for log shippers, or `pretty` one-line-per-event text for a terminal. */
    logFormat: z.enum(['json', 'pretty']).default('json'),
    /** Bearer token peers must present; null = no auth (loopback only unless insecureBind). */
    peerToken: z.string().min(16, 'must be at least 16 characters').max(512).nullable().default(null),
    /** Bearer token for admin mutations; null = admin API disabled. */
    adminToken: z.string().min(16, 'must be at least 16 characters').max(512).nullable().default(null),
    insecureBind: z.boolean().default(false),
    maxPayloadBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    pingIntervalMs: z.number().int().min(100).max(10 * 60_000).default(15_000),
    /** Sustained frames per second per connection, and the burst above it. */
    rateLimitPerSec: z.number().min(1).max(100_000).default(50),
    rateLimitBurst: z.number().int().min(1).max(1_000_000).default(200),
    /** A connection whose unsent output passes this is cut off (it stopped reading). */
    maxBufferedBytes: z.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
    /** Bad frames (or rate-limit violations) tolerated before closing with 1008. */
    maxStrikes: z.number().int().min(1).max(1000).default(10),
    synchronous: z.enum(['normal', 'full']).default('normal'),
    /** Group commit (server/authority.ts): while at most 32 peers are connected, inputs this many ms apart share a commit; 0 (default) disables. */
    groupCommitMs: z.number().min(0).max(1000).default(0),
    /** Backup copies start after max(stragglerFactor × estimate, stragglerMinSec); 0 disables. */
    stragglerFactor: z.number().min(0).max(100).default(2),
    stragglerMinSec: z.number().min(0).max(24 * 3600).default(30),
    defaultEstimateSec: z.number().positive().max(7 * 24 * 3600).default(60),
    /** Leases a step may lose with its peer before it is failed as a poison step. */
    maxLostLeases: z.number().int().min(1).max(1_000_000).default(3),
    /** A lease older than this is ended and the step leased again; null: 4 × the step's estimate (at least 10 min), or 2 h without one. */
    maxLeaseAgeSec: z.number().positive().max(30 * 24 * 3600).nullable().default(null),
    retentionHours: z.number().min(0).max(24 * 365).default(24),
    /** Resolved cohorts (their steps, leases, peers, events, log tails) leave the database this long after they resolved (never before `retentionHours`). */
    historyDays: z.number().min(0).max(3650).default(14),
    /** With a PostgreSQL store: seconds between leader-lease renewals (`--leader-renew`). */
    leaderRenewSec: z.number().min(0.1).max(600).default(2),
    /** With a PostgreSQL store: seconds a leader lease lasts after a renewal (`--leader-ttl`). */
    leaderTtlSec: z.number().min(0.5).max(3600).default(10),
    /** This authority's id among those sharing a database (default host name and pid). */
    authorityId: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
    /** How long a SIGTERM drain may take before the process exits anyway. */
    shutdownTimeoutMs: z.number().int().min(100).max(60_000).default(4_000),
    // ---- closed by default (README "Security"); see server/http/upgrade-guard.ts and connection-guard.ts
    /** Browser origins (scheme://host[:port]) besides the authority's own that may open a WebSocket. */
    allowedOrigins: z.array(originSchema).max(64).default([]),
    /** A connection that has not joined (hello / INIT) within this is closed with 1008 `HELLO_TIMEOUT`. */
    helloTimeoutMs: z.number().int().min(100).max(3600_000).default(10_000),
    /** Open WebSocket connections, in all and from one remote address; past either, upgrades get HTTP 503. */
    maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
    maxConnectionsPerAddress: z.number().int().min(1).max(1_000_000).default(1_000),
    /** Sustained bytes per second per connection, charged with every frame; the burst is the largest frame. */
    rateLimitBytesPerSec: z.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024),
    /** Per source (repo + cache id): open cohorts, and steps in them; a hello that would create one more gets QUOTA_EXCEEDED. */
    maxCohortsPerSource: z.number().int().min(1).max(1_000_000).default(256),
    maxStepsPerSource: z.number().int().min(1).max(100_000_000).default(100_000),
    /** An open cohort with no active peer (nobody joined, or everyone left) is abandoned after this. */
    idleCohortHours: z.number().min(0).max(24 * 365).default(1),
    /** An HTTP request must arrive whole, and an HTTP connection may sit idle, this long. */
    requestTimeoutMs: z.number().int().min(100).max(3600_000).default(30_000),
  })
  .superRefine((c, ctx) => {
    if (c.leaderRenewSec * 2 > c.leaderTtlSec) {
      ctx.addIssue({ code: 'custom', path: ['leaderRenewSec'], message: `must be at most half of the leader TTL (${c.leaderTtlSec} s), so one missed renewal does not lose the lease` });
    }
    if (c.peerToken === null && !c.insecureBind && !isLoopback(c.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['host'],
        message: `refusing to bind ${c.host} without a peer token: set TASKSHARD_TOKEN or --token-file, or pass --insecure-bind`,
      });
    }
  });

export type ServerConfigInput = z.input<typeof serverConfigSchema>;
export type ServerConfig = Readonly<z.output<typeof serverConfigSchema>>;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Thrown with every problem, one per line, each naming the setting. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid server configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function parseServerConfig(input: ServerConfigInput): ServerConfig {
  const parsed = serverConfigSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) throw new ConfigError(problemsFromZod(parsed.error).map(formatProblem));
  return Object.freeze(parsed.data);
}
