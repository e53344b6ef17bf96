import { closeSync, copyFileSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HistoryPruner } from '../../server/history-pruner.js';
import { WalCheckpointer, type CheckpointReport } from '../../server/store/sqlite-checkpointer.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { eventWrite, seedCohortWrites } from './contract/fixtures.js';

/**
 * WAL checkpoints in a worker thread (issue 11: no commit on the event loop
 * copies and fsyncs the WAL). A real file; the worker's reports are events
 * the test waits on, never a sleep.
 */
let dir: ReturnType<typeof tempDir>;
const stores: SqliteStore[] = [];
beforeEach(() => {
  dir = tempDir('taskshard-checkpoint-');
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  dir.remove();
});

/** Resolves with the first report `accept` takes. */
function reports(): { on: (r: CheckpointReport) => void; next: (accept: (r: CheckpointReport) => boolean) => Promise<CheckpointReport> } {
  const waiting: { accept: (r: CheckpointReport) => boolean; resolve: (r: CheckpointReport) => void }[] = [];
  return {
    on: (r) => {
      for (const w of [...waiting]) {
        if (w.accept(r)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve(r);
        }
      }
    },
    next: (accept) => new Promise((resolve) => waiting.push({ accept, resolve })),
  };
}

describe('background WAL checkpoints', () => {
  it('the authority connection never checkpoints; the worker copies the whole WAL, and closing leaves no WAL behind', async () => {
    const seen = reports();
    const path = dir.file('a.db');
    const store = new SqliteStore(path, { checkpointInBackground: true, onCheckpoint: seen.on });
    stores.push(store);
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    // About 2,000 pages of writes: SQLite's own default would have checkpointed inside a commit twice.
    for (let i = 0; i < 40; i++) {
      const writes = seedCohortWrites({ id: `c${i}`, createdAtMs: 1000, resolvedAtMs: 2000 });
      for (let e = 0; e < 50; e++) writes.push(eventWrite(`c${i}`, 1500, 'step.log', { detail: 'x'.repeat(2000) }));
      store.scheduler.apply(writes);
    }
    // A checkpoint that started after the last write copied everything.
    const wroteAtMs = Date.now();
    const done = await seen.next((r) => r.startedAtMs > wroteAtMs);
    expect(done.checkpointedFrames).toBe(done.walFrames);
    // Everything is in the database file itself: a copy of it alone, without the WAL, holds every row.
    const copy = dir.file('copy.db');
    copyFileSync(path, copy);
    const alone = new Database(copy, { readonly: true });
    try {
      expect(alone.prepare("SELECT count(*) AS n FROM events WHERE kind = 'step.log'").get()).toEqual({ n: 40 * 50 });
    } finally {
      alone.close();
    }
    store.close();
    stores.splice(stores.indexOf(store), 1);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare("SELECT count(*) AS n FROM events WHERE kind = 'step.log'").get()).toEqual({ n: 40 * 50 });
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('under steady commits the WAL is rewound, so it stays bounded: a checkpoint finishes under the commit gate, a batch that meets it commits after', async () => {
    const seen = reports();
    const path = dir.file('steady.db');
    const store = new SqliteStore(path, { checkpointInBackground: true, checkpointFinishFrames: 100, onCheckpoint: seen.on });
    stores.push(store);
    // The WAL header's checkpoint sequence number goes up each time the WAL is rewound.
    const rewinds = (): number => {
      const header = Buffer.alloc(16);
      const fd = openSync(`${path}-wal`, 'r');
      try {
        readSync(fd, header, 0, 16, 0);
      } finally {
        closeSync(fd);
      }
      return header.readUInt32BE(12);
    };
    store.scheduler.apply(seedCohortWrites({ id: 'c0', createdAtMs: 1000 }));
    await seen.next(() => true); // the worker is up
    let largestWalBytes = 0;
    let deferred = 0;
    // About 8,000 pages in 800 batches, about one a millisecond, each on its own turn of the event loop (as the authority commits).
    for (let i = 0; i < 800; i++) {
      const writes = Array.from({ length: 10 }, () => eventWrite('c0', 1500, 'step.log', { detail: `${i}`.padEnd(3000, 'x') }));
      const commit = store.scheduler.apply(writes);
      if (commit instanceof Promise) {
        deferred++;
        await commit;
      }
      largestWalBytes = Math.max(largestWalBytes, statSync(`${path}-wal`).size);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(rewinds()).toBeGreaterThanOrEqual(2);
    // Without the rewinds the WAL would hold every frame written: more than 8,000 pages (32 MB).
    expect(largestWalBytes).toBeLessThan(4000 * 4096);
    expect(store.db.prepare("SELECT count(*) AS n FROM events WHERE kind = 'step.log'").get()).toEqual({ n: 8000 });
    // Batches that met a finishing checkpoint were committed after it (all 8,000 rows above are there).
    expect(deferred).toBeLessThan(800);
  });

  it('history pruning and page reclaiming take the commit gate too, and finish', async () => {
    const path = dir.file('prune.db');
    const store = new SqliteStore(path, { checkpointInBackground: true, checkpointFinishFrames: 50 });
    stores.push(store);
    for (let i = 0; i < 60; i++) {
      const writes = seedCohortWrites({ id: `old${i}`, createdAtMs: 1000, resolvedAtMs: 2000 });
      for (let e = 0; e < 10; e++) writes.push(eventWrite(`old${i}`, 1500, 'step.log', { detail: 'x'.repeat(2000) }));
      await store.scheduler.apply(writes);
    }
    const pass = await new HistoryPruner({
      retention: store.retention,
      reclaim: (n) => store.reclaim(n),
      clock: { now: () => 10_000 },
      log: { info: () => undefined, error: () => undefined },
      historyMs: 1000,
      retentionMs: 1000,
      gapMs: 1,
    }).runPass();
    expect(pass.removed.cohorts).toBe(60);
    expect(pass.pagesFreed).toBeGreaterThan(0);
    expect(store.db.prepare('SELECT count(*) AS n FROM cohorts').get()).toEqual({ n: 0 });
  });

  it("pruning batches and reclaim steps run on the worker's connection, off the event loop, and wait for a commit holding the gate", async () => {
    const path = dir.file('offload.db');
    const store = new SqliteStore(path, { checkpointInBackground: true });
    stores.push(store);
    for (let i = 0; i < 20; i++) {
      const writes = seedCohortWrites({ id: `old${i}`, createdAtMs: 1000, resolvedAtMs: 2000 });
      for (let e = 0; e < 10; e++) writes.push(eventWrite(`old${i}`, 1500, 'step.log', { detail: 'x'.repeat(2000) }));
      await store.scheduler.apply(writes);
    }
    // Rows this connection changed: a delete made here would count.
    const changedHere = (): number => store.db.prepare('SELECT total_changes() AS n').pluck().get() as number;
    const before = changedHere();
    const events = (store.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    // A commit holds the gate: the batch is handed over at once and waits, on the worker, for it.
    const gate = (store as unknown as { checkpointer: WalCheckpointer }).checkpointer;
    expect(gate.enter()).toBe(true);
    let done = false;
    const batch = store.retention.pruneHistory(5000, 20).then((r) => {
      done = true;
      return r;
    });
    // Turns of the event loop go by meanwhile; the batch does not get past the gate.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    expect(store.db.prepare('SELECT count(*) AS n FROM cohorts').get()).toEqual({ n: 20 });
    gate.leave();
    const result = await batch;
    expect(result.removed.cohorts).toBe(20);
    expect(result.removed.events).toBe(events);
    expect(store.db.prepare('SELECT count(*) AS n FROM cohorts').get()).toEqual({ n: 0 });
    expect(changedHere()).toBe(before);
    const freeBefore = store.db.pragma('freelist_count', { simple: true }) as number;
    expect(freeBefore).toBeGreaterThan(0);
    const step = store.reclaim(8);
    expect(step).toBeInstanceOf(Promise);
    expect(await step).toBe(8);
    expect(store.db.pragma('freelist_count', { simple: true })).toBe(freeBefore - 8);
    expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('is off unless asked for: a store for tools checkpoints in its commits as SQLite does by default', () => {
    const store = new SqliteStore(dir.file('b.db'));
    stores.push(store);
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('a worker that cannot open the file reports it, naming the file', async () => {
    const missing = dir.file('missing.db');
    let checkpointer: WalCheckpointer | null = null;
    const failed = await new Promise<Error>((resolve) => {
      checkpointer = new WalCheckpointer({ path: missing, synchronous: 'normal', onError: resolve });
    });
    expect(failed.message).toContain(`background WAL checkpoint of ${missing} failed`);
    await expect(checkpointer!.run({ kind: 'reclaim', maxPages: 1 })).rejects.toThrow(`reclaim on ${missing}: the maintenance worker has stopped`);
    expect(checkpointer!.stop()).toBe(true);
    expect(existsSync(missing)).toBe(false);
  });
});
