import type { Clock } from './core/clock.js';
import type { PruneResult, Retention } from './core/store-port.js';

/**
 * Deletes history older than `--history-days` from the database while the
 * authority runs (DESIGN §11), in bounded batches: one batch is one short
 * transaction; the batch size adapts so a batch takes about `targetBatchMs`
 * (never more cohorts than `maxBatch`), and batches are separated by a timer.
 * On a SQLite file the authority's batches and reclaim steps run on the
 * background checkpointer's thread (sqlite-checkpointer.ts), so the event loop
 * only waits for them; elsewhere (PostgreSQL: on the server; `taskshard db
 * prune`: on this thread) the bound keeps each one short. After a pass it hands freed
 * pages back to the file system (`reclaim`, SQLite's incremental vacuum) in
 * bounded steps too; in steady state the file stops growing.
 *
 * The cutoff is `now - max(history, retention)`: nothing the scheduler still
 * holds in memory is ever pruned (the store also skips resolved cohorts with
 * an active member).
 */
/** Where a pass is logged (fastify's logger, or the CLI's lines). */
export interface PruneLog {
  info(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface HistoryPrunerOptions {
  readonly retention: Retention;
  /** Frees up to `maxPages` unused pages; returns how many it freed (0: nothing left). */
  readonly reclaim?: (maxPages: number) => number | Promise<number>;
  readonly clock: Clock;
  readonly log: PruneLog;
  readonly historyMs: number;
  readonly retentionMs: number;
  /** Pause between passes once nothing is due. Default 60 s. */
  readonly intervalMs?: number;
  /** Pause between batches of one pass. Default 20 ms. */
  readonly gapMs?: number;
  readonly targetBatchMs?: number;
  /** What a batch's duration is read from, ms (default `performance.now`; tests pass a fake). */
  readonly elapsed?: () => number;
  readonly maxBatch?: number;
  /** Called after every pass (tests, the day benchmark's log). */
  readonly onPass?: (pass: PrunePass) => void;
}

/** What one pass removed. */
export interface PrunePass {
  readonly cutoffMs: number;
  readonly removed: PruneResult['removed'];
  readonly batches: number;
  readonly pagesFreed: number;
  /** The longest single batch, in ms of wall time (on the authority's SQLite file, the worker's time plus the wait for the gate). */
  readonly longestBatchMs: number;
  /** The longest single step of handing free pages back (`reclaim`), ms of wall time (a wait for a finishing checkpoint included). */
  readonly longestReclaimMs: number;
}

const reclaimPages = 256;

export class HistoryPruner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private batch = 50;

  constructor(private readonly options: HistoryPrunerOptions) {}

  start(): void {
    this.schedule(0);
  }

  /** One whole pass now (for `taskshard db prune` and tests); resolves when nothing more is due. */
  async runPass(): Promise<PrunePass> {
    const o = this.options;
    const cutoffMs = o.clock.now() - Math.max(o.historyMs, o.retentionMs);
    const removed = { cohorts: 0, steps: 0, successes: 0, leases: 0, peers: 0, events: 0 };
    let batches = 0;
    let longestBatchMs = 0;
    let pagesFreed = 0;
    for (;;) {
      if (this.stopped) break;
      const now = o.elapsed ?? (() => performance.now());
      const t0 = now();
      const result = await o.retention.pruneHistory(cutoffMs, this.batch);
      const ms = now() - t0;
      batches++;
      longestBatchMs = Math.max(longestBatchMs, ms);
      for (const key of Object.keys(removed) as (keyof typeof removed)[]) removed[key] += result.removed[key];
      this.adapt(ms, result.removed.cohorts);
      if (!result.more) break;
      await this.pause(o.gapMs ?? 20);
    }
    let longestReclaimMs = 0;
    while (o.reclaim && !this.stopped) {
      const t0 = performance.now();
      const pending = o.reclaim(reclaimPages);
      // Wall time; a wait for a finishing background checkpoint (the event loop free meanwhile) is included.
      const freed = typeof pending === 'number' ? pending : await pending;
      longestReclaimMs = Math.max(longestReclaimMs, performance.now() - t0);
      pagesFreed += freed;
      if (freed < reclaimPages) break;
      await this.pause(o.gapMs ?? 20);
    }
    const pass: PrunePass = { cutoffMs, removed, batches, pagesFreed, longestBatchMs: Math.round(longestBatchMs * 10) / 10, longestReclaimMs: Math.round(longestReclaimMs * 10) / 10 };
    // The longest batch and reclaim step, wall time: what a pass held the commit gate (SQLite) at most.
    if (removed.cohorts > 0) {
      o.log.info({ ...removed, batches, pagesFreed, longestBatchMs: pass.longestBatchMs, longestReclaimMs: pass.longestReclaimMs, cutoff: new Date(cutoffMs).toISOString() }, 'history pruned');
    }
    o.onPass?.(pass);
    return pass;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /**
   * The next batch in proportion to how long this one took against the target: down to a quarter at
   * once when it took longer, at most 1.5× larger when it was quicker, and larger only after a full
   * batch (a pass with little or nothing due is quick whatever the batch: growing on it had taken the
   * batch to `maxBatch`, and the first busy pass then blocked for 60–110 ms in the day benchmark).
   */
  private adapt(ms: number, removedCohorts: number): void {
    const target = this.options.targetBatchMs ?? 8;
    if (ms > target) this.batch = Math.max(1, Math.floor(this.batch * Math.max(0.25, target / ms)));
    else if (removedCohorts >= this.batch) {
      const grown = Math.max(this.batch + 1, Math.floor(this.batch * Math.min(1.5, target / Math.max(ms, 0.01))));
      this.batch = Math.min(this.options.maxBatch ?? 1000, grown);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runPass()
        .catch((err: unknown) => this.options.log.error({ err }, 'history pruning failed; retrying at the next pass'))
        .then(() => {
          this.running = null;
          this.schedule(this.options.intervalMs ?? 60_000);
        });
    }, delayMs);
    this.timer.unref();
  }
}
