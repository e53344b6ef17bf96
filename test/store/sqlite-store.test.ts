import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { migrations } from '../../server/store/migrations.js';
import { CoreHarness, snapshotFromWrites } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
let store: SqliteStore | null = null;
beforeEach(() => {
  dir = tempDir('taskshard-store-');
});
afterEach(() => {
  store?.close();
  store = null;
  dir.remove();
});

function open(name = 'state.db'): SqliteStore {
  store?.close();
  store = new SqliteStore(dir.file(name));
  return store;
}

/** A small but complete history: joins, leases, a success, a failure with retry, a memo, a lost lease. */
function scenario(): CoreHarness {
  const h = new CoreHarness(dagSchema({ a: [], b: ['a'], c: [] }, { a: 10 }));
  h.hello('p1', { reg: { baseSha: 'd'.repeat(40) } });
  h.hello('p2', { reg: { baseSha: 'd'.repeat(40) } });
  h.finish('p1', h.lastAssign('p1')!.leaseId, 'a', true, { durationMs: 1234 });
  h.finish('p2', h.lastAssign('p2')!.leaseId, 'c', false, { exitCode: 2, logTail: 'oops' });
  h.disconnect('p1');
  return h;
}

describe('SqliteStore', () => {
  it('applies numbered migrations once and records the version', () => {
    open();
    open(); // reopening applies nothing twice
    const db = new Database(dir.file('state.db'), { readonly: true });
    const rows = db.prepare('SELECT version, name FROM schema_migrations').all();
    expect(rows).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('refuses a database written by a newer taskshard', () => {
    open().close();
    const db = new Database(dir.file('state.db'));
    db.prepare('INSERT INTO schema_migrations VALUES (999, ?, 0)').run('future');
    db.close();
    expect(() => new SqliteStore(dir.file('state.db'))).toThrow(`database schema version 999 is newer than this taskshard knows (${Math.max(...migrations.map((m) => m.version))})`);
  });

  it('loads back exactly what the core wrote', () => {
    const h = scenario();
    const s = open();
    s.apply(h.writes);
    const loaded = s.load(h.clock.now(), 24 * 3600_000);
    const expected = snapshotFromWrites(h.writes);
    const byKey = <T>(rows: readonly T[], key: (r: T) => string) => [...rows].sort((x, y) => key(x).localeCompare(key(y)));
    expect(byKey(loaded.cohorts, (r) => r.cohortId)).toEqual(byKey(expected.cohorts, (r) => r.cohortId));
    expect(byKey(loaded.steps, (r) => r.stepId)).toEqual(byKey(expected.steps, (r) => r.stepId));
    expect(byKey(loaded.leases, (r) => r.leaseId)).toEqual(byKey(expected.leases, (r) => r.leaseId));
    expect(byKey(loaded.peers, (r) => r.peerId)).toEqual(byKey(expected.peers, (r) => r.peerId));
    expect(loaded.memos).toEqual(expected.memos);
    expect(loaded.durations).toEqual(expected.durations);
    expect(s.integrityCheck()).toBe('ok');
  });

  it('survives reopening the file (restart) with the same state', () => {
    const h = scenario();
    open().apply(h.writes);
    const before = open().load(h.clock.now(), 3600_000);
    const after = open().load(h.clock.now(), 3600_000);
    expect(after).toEqual(before);
  });

  it('makes a second success of the same step impossible, and rolls back the whole batch', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.finish('p1', h.lastAssign('p1')!.leaseId, 's1');
    const s = open();
    s.apply(h.writes);
    const eventsBefore = s.db.prepare('SELECT count(*) AS n FROM events').get();
    expect(() =>
      s.apply([
        { table: 'event', row: { cohortId: 'c1', atMs: 1, kind: 'x', stepId: null, peerId: null, detail: null } },
        { table: 'success', cohortId: 'c1', stepId: 's1', leaseId: 'l9', peerId: 'p9', atMs: 2 },
      ]),
    ).toThrow(/UNIQUE constraint failed: step_successes.cohort_id, step_successes.step_id/);
    expect(s.db.prepare('SELECT count(*) AS n FROM events').get()).toEqual(eventsBefore);
    expect(s.db.prepare('SELECT peer_id FROM step_successes').all()).toEqual([{ peer_id: 'p1' }]);
  });

  it('loads only open cohorts and those resolved within the retention period, and only live memos', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('done', { reg: { baseSha: 'e'.repeat(40) } });
    h.finish('done', h.lastAssign('done')!.leaseId, 's1');
    const resolvedAt = h.clock.now();
    h.clock.advance(10);
    h.hello('open', { reg: { patchsets: ['other'] } });
    const s = open();
    s.apply(h.writes);
    expect(s.load(resolvedAt + 100, 1000).cohorts.map((c) => c.cohortId)).toEqual(['c1', 'c2']);
    expect(s.load(resolvedAt + 1001, 1000).cohorts.map((c) => c.cohortId)).toEqual(['c2']);
    const memo = s.load(resolvedAt, 1000).memos[0]!;
    expect(s.load(memo.expiresAtMs - 1, 1000).memos).toHaveLength(1);
    expect(s.load(memo.expiresAtMs, 1000).memos).toHaveLength(0);
  });

  it('names table, key and column when stored JSON is corrupt', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    const s = open();
    s.apply(h.writes);
    s.db.prepare("UPDATE cohorts SET schema_json = '{\"id\":1}'").run();
    expect(() => s.load(h.clock.now(), 1000)).toThrow(/^corrupt database: cohorts\[c1\]\.schema_json: id /);
    s.db.prepare("UPDATE cohorts SET schema_json = 'not json'").run();
    expect(() => s.load(h.clock.now(), 1000)).toThrow(/^corrupt database: cohorts\[c1\]\.schema_json is not JSON/);
  });

  it('rejects rows that break the table rules instead of storing them', () => {
    const s = open();
    expect(() =>
      s.apply([{ table: 'event', row: { cohortId: 'no-such-cohort', atMs: 1, kind: 'x', stepId: null, peerId: null, detail: null } }]),
    ).toThrow(/FOREIGN KEY constraint failed/);
  });
});
