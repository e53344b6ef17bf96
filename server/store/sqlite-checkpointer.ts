import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { PruneResult } from '../core/store-port.js';
import type { CommitGate } from './sqlite-scheduler-store.js';

/**
 * SQLite's WAL checkpoints, off the event loop. By default SQLite runs a
 * checkpoint inside the commit that takes the WAL past 1,000 pages: it copies
 * the WAL's pages into the database file and fsyncs both, on the thread that
 * committed — the authority's event loop. In the day benchmark those commits
 * took 15–250 ms where a commit otherwise takes about 1 ms (issue 11: longest
 * block ≤ 50 ms). So the authority's connection turns automatic checkpoints
 * off and a worker thread with its own connection to the same file runs
 * `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`: PASSIVE never waits for
 * the writer or readers, and the writer keeps appending meanwhile.
 *
 * The WAL is rewound (written again from its start) only by a commit that
 * begins when everything in it has been copied. Under steady traffic a commit
 * always lands while a checkpoint runs, and the WAL grew without bound (636 MB
 * after 3,000 cohorts). So once the WAL holds `finishFrames` (4,000), the worker takes
 * the commit gate (a word of shared memory; `CommitGate`), copies the few
 * frames written since its last pass, and lets go: a batch that finds the gate
 * taken is committed when it is free, asynchronously — the authority's event
 * loop never waits on the checkpoint, its commits are only later by that long.
 * The next commit rewinds the WAL.
 *
 * The same worker runs the authority's store maintenance (`run`): a batch of
 * history pruning and a step of page reclaiming (incremental vacuum) are write
 * transactions of up to tens of milliseconds, so they run on the worker's
 * connection under the commit gate too, and the event loop only waits for the
 * answer (issue 11: in the day benchmark over 60,000 cohorts a pruning batch and
 * a reclaim step took 40 ms each on the event loop).
 *
 * Stopping is synchronous (the store's close is): the worker is woken, closes
 * its connection after the checkpoint it may be running, and says so through
 * shared memory; only then does the authority's connection close (the last
 * one to close checkpoints what is left and removes the WAL).
 */
export interface CheckpointReport {
  /** Frames in the WAL when the checkpoint ran. */
  readonly walFrames: number;
  /** Frames copied into the database file so far (all of them: `walFrames`). */
  readonly checkpointedFrames: number;
  readonly ms: number;
  /** How long this checkpoint held the commit gate (0: it did not take it). */
  readonly gateMs: number;
  /** When it started, wall clock ms (`Date.now()`; tests wait for one that started after their writes). */
  readonly startedAtMs: number;
}

export interface CheckpointerOptions {
  readonly path: string;
  readonly synchronous: 'normal' | 'full';
  /** Pause between checkpoints. Default 100 ms. */
  readonly intervalMs?: number;
  /**
   * WAL frames (pages) after which a checkpoint finishes under the commit gate, so the WAL is
   * rewound. Default 4,000 (16 MB): the gate is held for the last frames' copy and two fsyncs,
   * so the rarer, the less commits wait; SQLite's own threshold is 1,000.
   */
  readonly finishFrames?: number;
  /** The statements of a history-pruning batch, for `run({ kind: 'prune' })`. */
  readonly pruneSql?: PruneSql;
  /** Called after each checkpoint that found frames (on the event loop; tests and metrics). */
  readonly onCheckpoint?: (report: CheckpointReport) => void;
  /** The worker failed (it could not open the file, a checkpoint threw): the caller turns automatic checkpoints back on. */
  readonly onError: (err: Error) => void;
}

// Slots of the shared state: [0] command (0 run, 1 stop), [1] worker state (0 running, 1 closed),
// [2] the commit gate (0 free, 1 held by a checkpoint, 2 held by a commit).
const command = 0;
const workerState = 1;
const gateSlot = 2;

/** The worker's code, CommonJS (eval: the same text works from dist/ and from the TypeScript sources in tests). */
const workerSource = `
const { workerData, parentPort } = require('node:worker_threads');
const { driver, path, synchronous, intervalMs, finishFrames, shared, pruneSql } = workerData;
const state = new Int32Array(shared);
let db = null;
let timer = null;
let closed = false;
const takeGate = () => {
  // A commit holds the gate for about a millisecond: wait for it, then take it.
  while (Atomics.compareExchange(state, ${gateSlot}, 0, 1) !== 0) {
    if (Atomics.load(state, ${command}) !== 0) return false;
    Atomics.wait(state, ${gateSlot}, 2, 5);
  }
  return true;
};
const releaseGate = () => {
  Atomics.store(state, ${gateSlot}, 0);
  Atomics.notify(state, ${gateSlot});
  parentPort.postMessage({ released: true });
};
const close = () => {
  if (closed) return;
  closed = true;
  if (timer !== null) clearTimeout(timer);
  try { if (db !== null) db.close(); } catch {}
  Atomics.store(state, ${gateSlot}, 0);
  Atomics.store(state, ${workerState}, 1);
  Atomics.notify(state, ${workerState});
  parentPort.postMessage({ released: true });
};
const fail = (err) => {
  // Closed first, so whoever hears of the failure finds the worker stopped.
  close();
  parentPort.postMessage({ error: err && err.message ? err.message : String(err) });
};
const checkpoint = () => {
  timer = null;
  if (closed || Atomics.load(state, ${command}) !== 0) return close();
  try {
    const startedAtMs = Date.now();
    const t0 = performance.now();
    let [r] = db.pragma('wal_checkpoint(PASSIVE)');
    let gateMs = 0;
    if (r.log >= finishFrames && takeGate()) {
      const g0 = performance.now();
      try {
        [r] = db.pragma('wal_checkpoint(PASSIVE)');
      } finally {
        gateMs = performance.now() - g0;
        releaseGate();
      }
    }
    if (r.log > 0) parentPort.postMessage({ walFrames: r.log, checkpointedFrames: r.checkpointed, ms: performance.now() - t0, gateMs, startedAtMs });
  } catch (err) {
    return fail(err);
  }
  timer = setTimeout(checkpoint, intervalMs);
};
// Maintenance the authority hands over so its event loop never runs it: one bounded history-pruning
// batch (children first, the cohort rows last, one transaction), or one step of page reclaiming.
let prune = null;
const jobs = {
  prune: ({ before, maxCohorts }) => {
    if (prune === null) {
      const pick = db.prepare(pruneSql.pick).pluck();
      const more = db.prepare(pruneSql.more).pluck();
      const deletes = pruneSql.deletes.map(([key, text]) => [key, db.prepare(text)]);
      const deleteCohorts = db.prepare(pruneSql.deleteCohorts);
      prune = db.transaction((b, limit) => {
        const ids = JSON.stringify(pick.all({ before: b, limit }));
        const removed = { cohorts: 0, steps: 0, successes: 0, leases: 0, peers: 0, events: 0 };
        for (const [key, stmt] of deletes) removed[key] = stmt.run(ids).changes;
        removed.cohorts = deleteCohorts.run(ids).changes;
        const removedRows = Object.values(removed).reduce((x, y) => x + y, 0);
        return { removed, removedRows, more: more.get({ before: b }) === 1 };
      });
    }
    return prune(before, maxCohorts);
  },
  reclaim: ({ maxPages }) => {
    if (db.pragma('auto_vacuum', { simple: true }) !== 2) return 0;
    const before = db.pragma('freelist_count', { simple: true });
    if (before === 0) return 0;
    db.pragma('incremental_vacuum(' + Math.max(1, Math.floor(maxPages)) + ')');
    return before - db.pragma('freelist_count', { simple: true });
  },
};
parentPort.on('message', (m) => {
  if (m.stop) return close();
  if (closed || !takeGate()) return parentPort.postMessage({ id: m.id, error: 'the maintenance worker has stopped' });
  try {
    parentPort.postMessage({ id: m.id, result: jobs[m.kind](m) });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: err && err.message ? err.message : String(err) });
  } finally {
    releaseGate();
  }
});
try {
  const Database = require(driver);
  db = new Database(path, { fileMustExist: true });
  db.pragma('synchronous = ' + synchronous);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  checkpoint();
} catch (err) {
  fail(err);
}
`;

type JobReply = { readonly id: number; readonly result: unknown } | { readonly id: number; readonly error: string };

/** What the worker runs for the authority, off its event loop. */
export type MaintenanceJob = { readonly kind: 'prune'; readonly before: number; readonly maxCohorts: number } | { readonly kind: 'reclaim'; readonly maxPages: number };

/** The statements of one history-pruning batch (sqlite-retention.ts), prepared by the worker on its own connection. */
export interface PruneSql {
  readonly pick: string;
  readonly more: string;
  readonly deletes: readonly (readonly [string, string])[];
  readonly deleteCohorts: string;
}

export class WalCheckpointer implements CommitGate {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private stopped = false;
  private waiting: (() => void)[] = [];
  private nextJob = 1;
  private readonly jobs = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>();

  constructor(private readonly options: CheckpointerOptions) {
    const shared = new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
    this.state = new Int32Array(shared);
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(workerSource, {
      eval: true,
      workerData: {
        driver,
        path: options.path,
        synchronous: options.synchronous.toUpperCase(),
        intervalMs: options.intervalMs ?? 100,
        finishFrames: options.finishFrames ?? 4000,
        shared,
        pruneSql: options.pruneSql ?? null,
      },
    });
    this.worker.unref();
    this.worker.on('message', (m: CheckpointReport | { error: string } | { released: true } | JobReply) => {
      if ('id' in m) {
        this.settle(m);
      } else if ('released' in m) {
        this.wake();
      } else if ('error' in m) {
        if (!this.stopped) options.onError(new Error(`background WAL checkpoint of ${options.path} failed: ${m.error}`));
      } else {
        options.onCheckpoint?.(m);
      }
    });
    this.worker.on('error', (err) => {
      if (!this.stopped) options.onError(err);
    });
    // A worker that died without running its finally (it could not even start) is not running, nor holding the gate.
    this.worker.on('exit', () => {
      Atomics.store(this.state, workerState, 1);
      Atomics.store(this.state, gateSlot, 0);
      this.wake();
      for (const id of [...this.jobs.keys()]) this.settle({ id, error: 'the maintenance worker exited' });
    });
  }

  /**
   * Runs `job` on the worker's connection under the commit gate (so no batch of the
   * authority's commits in between), off the event loop: a pruning batch of 40 ms or a
   * page-reclaim step of the same is the worker's time, not a block of the event loop.
   * Rejects naming the file if the worker has stopped or the job failed.
   */
  run(job: Extract<MaintenanceJob, { kind: 'prune' }>): Promise<PruneResult>;
  run(job: Extract<MaintenanceJob, { kind: 'reclaim' }>): Promise<number>;
  run(job: MaintenanceJob): Promise<unknown> {
    if (this.stopped || !this.running) return Promise.reject(new Error(`${job.kind} on ${this.options.path}: the maintenance worker has stopped`));
    const id = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      // A job in flight keeps the process alive until its answer (the worker is unref'd otherwise).
      if (this.jobs.size === 1) this.worker.ref();
      this.worker.postMessage({ ...job, id });
    });
  }

  private settle(reply: JobReply): void {
    const job = this.jobs.get(reply.id);
    if (job === undefined) return;
    this.jobs.delete(reply.id);
    if (this.jobs.size === 0) this.worker.unref();
    if ('error' in reply) job.reject(new Error(`background maintenance of ${this.options.path} failed: ${reply.error}`));
    else job.resolve(reply.result);
  }

  enter(): boolean {
    return Atomics.compareExchange(this.state, gateSlot, 0, 2) === 0;
  }

  leave(): void {
    Atomics.store(this.state, gateSlot, 0);
    Atomics.notify(this.state, gateSlot);
  }

  free(): Promise<void> {
    if (Atomics.load(this.state, gateSlot) === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /** Whether the worker is still checkpointing (false once it failed or was stopped). */
  get running(): boolean {
    return Atomics.load(this.state, workerState) === 0;
  }

  /**
   * Stops the worker and waits (up to `timeoutMs`, blocking) until its
   * connection is closed; returns false if it did not close in time.
   */
  stop(timeoutMs = 5000): boolean {
    if (this.stopped) return !this.running;
    this.stopped = true;
    Atomics.store(this.state, command, 1);
    Atomics.notify(this.state, command);
    this.worker.postMessage({ stop: true });
    const closed = Atomics.wait(this.state, workerState, 0, timeoutMs) !== 'timed-out';
    void this.worker.terminate();
    return closed;
  }
}
