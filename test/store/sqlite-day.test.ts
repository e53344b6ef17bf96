import { rmSync, statSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Write } from '../../server/core/records.js';
import { HistoryPruner, type PrunePass } from '../../server/history-pruner.js';
import { DatabaseFileLostError } from '../../server/store/sqlite-file-guard.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { tempDir } from '../helpers/temp-dir.js';
import { eventWrite, seedCohortWrites } from './contract/fixtures.js';

/** SQLite over a day in service (issue 11, items 3 and 7): a real file per test, a fake clock. */
let dir: ReturnType<typeof tempDir>;
const stores: SqliteStore[] = [];
beforeEach(() => {
  dir = tempDir('taskshard-day-');
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  dir.remove();
});

function open(name = 'state.db'): SqliteStore {
  const store = new SqliteStore(dir.file(name));
  stores.push(store);
  return store;
}

const hour = 3600_000;
const day = 24 * hour;
const silent = { info: () => undefined, error: () => undefined };

/** `n` resolved cohorts, each with a few dozen events (log-like rows), resolved at `at`. */
function resolvedCohorts(prefix: string, n: number, at: number): Write[] {
  const writes: Write[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${i}`;
    writes.push(...seedCohortWrites({ id, createdAtMs: at - 1000, resolvedAtMs: at }));
    for (let e = 0; e < 20; e++) writes.push(eventWrite(id, at - 500, 'step.log', { detail: 'x'.repeat(200) }));
  }
  return writes;
}

function pruner(store: SqliteStore, clock: FakeClock, over: { historyMs?: number; maxBatch?: number } = {}): HistoryPruner {
  return new HistoryPruner({
    retention: store.retention,
    reclaim: (n) => store.reclaim(n),
    clock,
    log: silent,
    historyMs: over.historyMs ?? day,
    retentionMs: hour,
    gapMs: 0,
    ...(over.maxBatch === undefined ? {} : { maxBatch: over.maxBatch }),
  });
}

describe('history retention on SQLite', () => {
  it('prunes history older than --history-days in bounded batches, keeps open cohorts, memos and durations, and returns the pages', async () => {
    const clock = new FakeClock(100 * day);
    const store = open();
    store.scheduler.apply(resolvedCohorts('old', 300, clock.now() - 3 * day));
    store.scheduler.apply(resolvedCohorts('recent', 5, clock.now() - 2 * hour));
    store.scheduler.apply([
      ...seedCohortWrites({ id: 'open', status: 'open', createdAtMs: clock.now() - 10 * day }),
      { table: 'memo', row: { memoKey: 'm1', stepId: 'a', cohortId: 'old1', peerId: 'p1', durationMs: 5, createdAtMs: clock.now(), expiresAtMs: clock.now() + day } },
      { table: 'duration', row: { durationKey: 'k1', avgMs: 5, samples: 3 } },
    ]);
    const pagesBefore = store.db.pragma('page_count', { simple: true }) as number;
    const pass = await pruner(store, clock, { maxBatch: 64 }).runPass();
    expect(pass.removed.cohorts).toBe(300);
    expect(pass.batches).toBeGreaterThanOrEqual(Math.ceil(300 / 64));
    expect(pass.pagesFreed).toBeGreaterThan(0);
    expect(store.db.pragma('page_count', { simple: true }) as number).toBeLessThan(pagesBefore);
    const loaded = store.scheduler.load(clock.now(), 1000 * day);
    expect(loaded.cohorts.map((c) => c.cohortId).sort()).toEqual(['open', 'recent0', 'recent1', 'recent2', 'recent3', 'recent4']);
    expect(loaded.memos.map((m) => m.memoKey)).toEqual(['m1']);
    expect(loaded.durations).toHaveLength(1);
    expect(store.integrityCheck()).toBe('ok');
  });

  it('never prunes inside the in-memory retention, whatever --history-days says', async () => {
    const clock = new FakeClock(100 * day);
    const store = open();
    store.scheduler.apply(resolvedCohorts('c', 3, clock.now() - 30 * 60_000)); // resolved 30 min ago; retention is 1 h
    const pass = await pruner(store, clock, { historyMs: 0 }).runPass();
    expect(pass.removed.cohorts).toBe(0);
    expect(pass.cutoffMs).toBe(clock.now() - hour);
  });

  it('the file stops growing in steady state: a day of cohorts in, a day out', async () => {
    const clock = new FakeClock(100 * day);
    const store = open();
    const p = pruner(store, clock, { historyMs: day });
    const pages: number[] = [];
    for (let round = 0; round < 6; round++) {
      store.scheduler.apply(resolvedCohorts(`r${round}-`, 150, clock.now()));
      clock.advance(day + hour);
      const pass: PrunePass = await p.runPass();
      if (round > 0) expect(pass.removed.cohorts).toBe(150);
      pages.push(store.db.pragma('page_count', { simple: true }) as number);
    }
    // After the first window, each round frees what the next one needs: flat within a few pages.
    const steady = pages.slice(1);
    expect(Math.max(...steady) - Math.min(...steady)).toBeLessThanOrEqual(Math.ceil(Math.min(...steady) * 0.05));
  });
});

describe('the SQLite file under a running store', () => {
  it('refuses to commit once the file is deleted, and says so in health()', () => {
    const store = open('gone.db');
    store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
    expect(store.health()).toEqual({ kind: 'sqlite', status: 'ok', location: dir.file('gone.db') });
    rmSync(dir.file('gone.db'));
    expect(() => store.scheduler.apply([eventWrite('c1', 2000, 'after')])).toThrow(DatabaseFileLostError);
    expect(store.health()).toMatchObject({ status: 'lost', detail: expect.stringContaining('was deleted') });
  });

  it('notices a replaced file between commits (watch), once', async () => {
    const store = open('swap.db');
    const lost = new Promise<Error>((resolve) => store.watch(resolve, 20));
    rmSync(dir.file('swap.db'));
    writeFileSync(dir.file('swap.db'), '');
    const err = await lost;
    expect(err).toBeInstanceOf(DatabaseFileLostError);
    expect(err.message).toContain('was replaced');
  });

  it('a file that is not a database fails at open with its name, and leaves the writer lock free', () => {
    writeFileSync(dir.file('junk.db'), 'this is not a database, just text that is long enough to have a header'.repeat(20));
    expect(() => open('junk.db')).toThrow(/not a database/);
    // The lock was released: the next attempt fails the same way, not as "in use by another writer".
    expect(() => open('junk.db')).toThrow(/not a database/);
    expect(statSync(dir.file('junk.db')).size).toBeGreaterThan(0);
  });
});
