import type { Sql } from '../store/postgres/pg-connection.js';

/**
 * One active authority per database: the `leader_lease` row (migration 2 of
 * the PostgreSQL store) names the holder, its term and until when it holds,
 * on the database's clock, never a process's.
 *
 * - acquire: only when the row is free (released) or expired; raises the term.
 * - renew: only while the row still holds this holder's term; extends expiry.
 * - release: only this holder's term; frees the row at once (planned handover).
 *
 * The term is the fence: every commit batch of the active authority checks it
 * in the same transaction (PgSchedulerStore.fenceByLeaderTerm), so after a
 * takeover the deposed holder cannot write even if it still believes it leads.
 */
export interface LeaderLeaseOptions {
  /** This authority's id, unique among those sharing the database (shown to standbys). */
  readonly holder: string;
  /** Seconds the lease lasts after each renewal (`--leader-ttl`, default 10). */
  readonly ttlSec: number;
}

/** What the lease row says now. */
export interface LeaderState {
  readonly term: number;
  /** null when released or never held. */
  readonly holder: string | null;
  /** Whether the row's expiry is still ahead on the database clock. */
  readonly live: boolean;
}

export class LeaderLease {
  /** The term this instance holds; null while it holds none. */
  private held: number | null = null;

  constructor(
    private readonly sql: Sql,
    readonly options: LeaderLeaseOptions,
  ) {
    if (!(options.ttlSec > 0)) throw new RangeError(`leader lease: ttlSec must be positive, got ${options.ttlSec}`);
  }

  get term(): number | null {
    return this.held;
  }

  get holder(): string {
    return this.options.holder;
  }

  /** Takes the lease if it is free or expired; returns the new term, or null when another holder's lease is live. */
  async tryAcquire(): Promise<number | null> {
    const rows = await this.sql.unsafe(
      `UPDATE leader_lease SET term = term + 1, holder = $1, expires_at = now() + make_interval(secs => $2::double precision)
       WHERE id = 1 AND (holder IS NULL OR expires_at <= now()) RETURNING term`,
      [this.options.holder, this.options.ttlSec],
    );
    const row = rows[0];
    if (row === undefined) return null;
    this.held = Number(row['term']);
    return this.held;
  }

  /** Extends the lease; false when this holder's term is no longer the row's (deposed). */
  async renew(): Promise<boolean> {
    if (this.held === null) return false;
    const rows = await this.sql.unsafe(
      `UPDATE leader_lease SET expires_at = now() + make_interval(secs => $3::double precision)
       WHERE id = 1 AND term = $1 AND holder = $2 RETURNING term`,
      [this.held, this.options.holder, this.options.ttlSec],
    );
    if (rows.length === 1) return true;
    this.held = null;
    return false;
  }

  /** Frees the row so a standby takes over at once; false when the term was no longer held. */
  async release(): Promise<boolean> {
    if (this.held === null) return false;
    const term = this.held;
    this.held = null;
    const rows = await this.sql.unsafe(`UPDATE leader_lease SET holder = NULL, expires_at = now() WHERE id = 1 AND term = $1 AND holder = $2 RETURNING term`, [
      term,
      this.options.holder,
    ]);
    return rows.length === 1;
  }

  /** The row as it is now. */
  async current(): Promise<LeaderState> {
    const rows = await this.sql.unsafe('SELECT term, holder, expires_at > now() AS live FROM leader_lease WHERE id = 1');
    const row = rows[0];
    if (row === undefined) throw new Error('corrupt database: leader_lease has no row 1 (migration 2 inserts it)');
    return { term: Number(row['term']), holder: row['holder'] === null ? null : String(row['holder']), live: row['live'] === true };
  }
}
