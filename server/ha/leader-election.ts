import { hostname } from 'node:os';
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import type { AuthorityApp } from '../app.js';
import { closeCodes } from '../../shared/close-codes.js';
import type { ServerConfig } from '../config.js';
import type { PostgresStore } from '../store/postgres/postgres-store.js';
import { LeaderKeeper, waitForLeadership, type LeaderTimings } from './leader-keeper.js';
import { LeaderLease, type LeaderState } from './leader-lease.js';
import { startStandbyServer, type StandbyServer } from './standby-server.js';

/**
 * An authority on a shared PostgreSQL database: standby until it holds the
 * leader lease, then active with every commit fenced by its term.
 *
 *   standby ──(lease acquired)──▶ active ──(SIGTERM)──▶ handed over (lease released, peers closed with 1012)
 *      │                            └──(lease lost / fenced commit)──▶ fatal, exit 1
 *      └──(SIGTERM)──▶ stopped
 *
 * While on standby it serves the probes and refuses peers (standby-server.ts);
 * on taking over it closes that listener and starts the real app on the same
 * address, which loads the open state (claiming the store's writer epoch).
 */
export interface LeaderElectionDeps {
  readonly config: ServerConfig;
  readonly store: PostgresStore;
  readonly logger: FastifyServerOptions['logger'];
  /** Builds the authority on the store and listens on the configured address. */
  startActive(): Promise<AuthorityApp>;
  /** The lease is lost or a commit was fenced: the process must exit 1. */
  onFatal(): void;
}

export function defaultAuthorityId(): string {
  return `${hostname()}-${process.pid}`;
}

export class LeaderElection {
  readonly lease: LeaderLease;
  private readonly timings: LeaderTimings;
  private standby: StandbyServer | null = null;
  private active: AuthorityApp | null = null;
  private keeper: LeaderKeeper | null = null;
  private readonly abort = new AbortController();
  private lastSeen: LeaderState | null = null;

  constructor(private readonly deps: LeaderElectionDeps) {
    this.lease = new LeaderLease(deps.store.sql, { holder: deps.config.authorityId ?? defaultAuthorityId(), ttlSec: deps.config.leaderTtlSec });
    this.timings = { renewMs: deps.config.leaderRenewSec * 1000, ttlMs: deps.config.leaderTtlSec * 1000 };
  }

  /** Stands by until this authority leads, then starts it; null when stopped while on standby. */
  async run(): Promise<AuthorityApp | null> {
    const { config } = this.deps;
    this.standby = await startStandbyServer({ host: config.host, port: config.port }, { active: () => (this.lastSeen?.live ? this.lastSeen.holder : null) }, config.leaderRenewSec, this.deps.logger);
    const log = this.standby.log;
    log.info({ authorityId: this.lease.holder, db: this.deps.store.location, port: this.standby.port }, 'standing by for the leader lease');
    let loggedActive: string | null = null;
    let term: number;
    try {
      term = await waitForLeadership(
        this.lease,
        this.timings,
        (state, err) => {
          if (err) return log.warn({ err }, 'leader lease: could not reach the database; still on standby');
          this.lastSeen = state;
          const holder = state?.live ? state.holder : null;
          if (holder !== loggedActive) log.info({ active: holder, term: state?.term }, 'on standby: another authority is active');
          loggedActive = holder;
        },
        this.abort.signal,
      );
    } catch (err) {
      if (this.abort.signal.aborted) return null;
      throw err;
    }
    const tookOverAt = Date.now();
    await this.standby.close();
    this.standby = null;
    this.deps.store.scheduler.fenceByLeaderTerm({ term, holder: this.lease.holder });
    this.active = await this.deps.startActive();
    const activeLog = this.active.app.log;
    this.keeper = new LeaderKeeper(this.lease, this.timings, activeLog, (why) => this.lost(activeLog, why));
    this.keeper.start();
    activeLog.info({ authorityId: this.lease.holder, term, startMs: Date.now() - tookOverAt }, 'leader lease acquired: this authority is active');
    return this.active;
  }

  /**
   * Planned stop. Active: stop granting, commit what is pending, release the
   * lease so a standby takes over at once, close peers with 1012. Standby: stop waiting.
   */
  async stop(): Promise<void> {
    this.abort.abort(new Error('stopped'));
    await this.standby?.close();
    this.standby = null;
    const active = this.active;
    if (active === null) return;
    this.keeper?.stop();
    active.authority.drain();
    await active.authority.stop();
    const term = this.lease.term;
    const released = await this.lease.release().catch((err: unknown) => {
      active.app.log.warn({ err }, 'could not release the leader lease; a standby takes over when it expires');
      return false;
    });
    if (released) active.app.log.info({ term }, 'leader lease released: a standby takes over now');
    await active.close({ closeCode: closeCodes.serviceRestart, reason: 'authority handing over; reconnect' });
  }

  private lost(log: FastifyBaseLogger, why: string): void {
    log.fatal({ authorityId: this.lease.holder, why }, 'lost the leader lease; stopping so two authorities never act at once');
    this.deps.onFatal();
  }
}
