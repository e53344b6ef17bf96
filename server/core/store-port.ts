import type { Snapshot, Write } from './records.js';

/**
 * The narrow storage interface the scheduler needs (owned here, implemented
 * by `server/store`). `apply` is atomic: all writes of a batch or none.
 */
export interface SchedulerStore {
  /** Open cohorts, resolved ones newer than `retentionMs`, their steps, leases and peers; live memos; durations. */
  load(nowMs: number, retentionMs: number): Snapshot;
  /** Commits a batch of writes in one transaction; throws (and commits nothing) on any failure. */
  apply(writes: readonly Write[]): void;
  close(): void;
}
