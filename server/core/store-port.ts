import type { CacheEvidenceView, ReadModel } from './read-model.js';
import type { Snapshot, Write } from './records.js';

/**
 * The store contract, owned by the core's side and implemented in
 * `server/store` (SQLite today). Three parts over one database:
 *
 * - {@link SchedulerStore}: what the authority needs to run the core.
 * - {@link ReadModel} (`read-model.ts`): typed views for the HTTP API and dashboard.
 * - {@link Retention}: pruning history in bounded batches.
 *
 * Guarded rows change only through conditional writes, so a second writer
 * can never silently overwrite what the first decided:
 * - a lease ends once: a write that would change an ended lease matches no row;
 * - a succeeded step stays succeeded, by the same builder (and its success row
 *   is unique);
 * - a cancelled cohort stays cancelled;
 * - every batch is fenced by the writer's claim: the first `load` or `apply`
 *   claims the database (a new epoch); once another store instance claims it,
 *   this one's next batch fails.
 * Rewriting a guarded row with the state it already holds is not a change and
 * passes. A conditional write that matches no row fails the whole batch
 * (nothing committed) with a {@link StoreConflictError}.
 *
 * `test/store/contract/` is the one suite every implementation must pass.
 */

/**
 * The narrow storage interface the scheduler needs. `apply` is atomic: all
 * writes of a batch or none. An embedded store (SQLite) answers synchronously;
 * a networked one (PostgreSQL) returns promises, and the authority then holds
 * the batch's frames until the promise settles, queueing later inputs' writes
 * and frames in order behind it (server/authority.ts). A synchronous store
 * pays nothing for this.
 */
export interface SchedulerStore {
  /** Open cohorts, resolved ones newer than `retentionMs`, their steps, leases and peers; live memos; durations. */
  load(nowMs: number, retentionMs: number): Snapshot | Promise<Snapshot>;
  /** Commits a batch of writes in one transaction; throws or rejects (and commits nothing) on any failure. */
  apply(writes: readonly Write[]): void | Promise<void>;
  /**
   * Stores a peer's cache evidence for a stored cohort, replacing that peer's earlier report.
   * Not scheduling state, so not part of a batch: it is history, kept with the cohort and pruned
   * with it (the row goes when its cohort row is deleted). Throws or rejects when the cohort is not stored.
   */
  recordCacheEvidence(cohortId: string, evidence: CacheEvidenceView): void | Promise<void>;
  close(): void;
}

/** What one pruning batch removed, per table, and whether more history is due. */
export interface PruneResult {
  readonly removed: {
    readonly cohorts: number;
    readonly steps: number;
    readonly successes: number;
    readonly leases: number;
    readonly peers: number;
    readonly events: number;
  };
  /** Sum of `removed`. */
  readonly removedRows: number;
  /** More cohorts resolved before the cutoff remain: call again (on a later tick). */
  readonly more: boolean;
}

export interface Retention {
  /**
   * Deletes up to `maxCohorts` cohorts (oldest resolution first) whose status is
   * not open and that resolved strictly before `resolvedBeforeMs`, with their
   * steps, success rows, leases, peers and events (log tails live on steps), in
   * one transaction. Open cohorts, resolved ones with a member still connected
   * or disconnected (in grace), memos and durations are never touched. Call it
   * only with a cutoff older than the scheduler's in-memory retention.
   */
  pruneHistory(resolvedBeforeMs: number, maxCohorts: number): Promise<PruneResult>;
}

/** The three parts over one database, as `buildApp` takes them (it closes the store on close). */
export interface Store {
  readonly scheduler: SchedulerStore;
  readonly readModel: ReadModel;
  readonly retention: Retention;
  /** Where the data lives, for logs (a file path; never a password). */
  readonly location: string;
  /** Closes the database; idempotent. A networked store resolves once its connections are gone. */
  close(): void | Promise<void>;
  /** Returns up to `maxPages` free pages to the file system; how many it returned (optional: SQLite). */
  reclaim?(maxPages: number): number | Promise<number>;
  /** The store's state for `/healthz` (cheap: no query). */
  health(): StoreHealth;
  /**
   * Calls `onLost` (once) when the database can no longer be written safely,
   * found between commits (a SQLite file deleted or replaced); returns a
   * function that stops watching. Commits check the same themselves.
   */
  watch?(onLost: (err: Error) => void): () => void;
}

/** What `/healthz` says about the store. */
export interface StoreHealth {
  readonly kind: 'sqlite' | 'postgres';
  /** `lost`: the database file was deleted or replaced; the authority stops. */
  readonly status: 'ok' | 'lost' | 'closed';
  /** A file path or a password-free URL. */
  readonly location: string;
  readonly detail?: string;
}

export type StoreConflictKind = 'lease-ended' | 'step-succeeded' | 'cohort-cancelled' | 'writer-deposed';

/** A conditional write matched no row: another writer changed the row, or this writer was deposed. */
export class StoreConflictError extends Error {
  constructor(
    readonly kind: StoreConflictKind,
    /** Table and key, e.g. `leases[l_1]`. */
    readonly row: string,
    detail: string,
  ) {
    super(`store conflict (${kind}) at ${row}: ${detail}; the whole batch was rolled back`);
    this.name = 'StoreConflictError';
  }
}

export type { ReadModel } from './read-model.js';
