import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
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
const { driver, path, synchronous, intervalMs, finishFrames, shared } = workerData;
const state = new Int32Array(shared);
let db = null;
const takeGate = () => {
  // A commit holds the gate for about a millisecond: wait for it, then take it.
  while (Atomics.compareExchange(state, ${gateSlot}, 0, 1) !== 0) {
    if (Atomics.load(state, ${command}) !== 0) return false;
    Atomics.wait(state, ${gateSlot}, 2, 5);
  }
  return true;
};
try {
  const Database = require(driver);
  db = new Database(path, { fileMustExist: true });
  db.pragma('synchronous = ' + synchronous);
  while (Atomics.load(state, ${command}) === 0) {
    const startedAtMs = Date.now();
    const t0 = performance.now();
    let [r] = db.pragma('wal_checkpoint(PASSIVE)');
    let gateMs = 0;
    if (r.log >= finishFrames && takeGate()) {
      const g0 = performance.now();
      try {
        [r] = db.pragma('wal_checkpoint(PASSIVE)');
      } finally {
        Atomics.store(state, ${gateSlot}, 0);
        gateMs = performance.now() - g0;
        parentPort.postMessage({ released: true });
      }
    }
    if (r.log > 0) parentPort.postMessage({ walFrames: r.log, checkpointedFrames: r.checkpointed, ms: performance.now() - t0, gateMs, startedAtMs });
    Atomics.wait(state, ${command}, 0, intervalMs);
  }
} catch (err) {
  parentPort.postMessage({ error: err && err.message ? err.message : String(err) });
} finally {
  try { if (db !== null) db.close(); } catch {}
  Atomics.store(state, ${gateSlot}, 0);
  Atomics.store(state, ${workerState}, 1);
  Atomics.notify(state, ${workerState});
  parentPort.postMessage({ released: true });
}
`;

export class WalCheckpointer implements CommitGate {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private stopped = false;
  private waiting: (() => void)[] = [];

  constructor(options: CheckpointerOptions) {
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
      },
    });
    this.worker.unref();
    this.worker.on('message', (m: CheckpointReport | { error: string } | { released: true }) => {
      if ('released' in m) {
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
    });
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
    const closed = Atomics.wait(this.state, workerState, 0, timeoutMs) !== 'timed-out';
    void this.worker.terminate();
    return closed;
  }
}
