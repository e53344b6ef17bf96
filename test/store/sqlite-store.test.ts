import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations } from '../../server/store/migrations.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';
import { seedCohortWrites } from './contract/fixtures.js';

/** What only the SQLite implementation promises; the shared behaviour is in sqlite-contract.test.ts. */
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

const newest = Math.max(...migrations.map((m) => m.version));

describe('SqliteStore', () => {
  it('applies numbered migrations once, in WAL mode, and records the versions', () => {
    open();
    open(); // reopening applies nothing twice
    const db = new Database(dir.file('state.db'), { readonly: true });
    const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    expect(rows).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('migrates a database written by the previous version, keeping its rows', () => {
    const db = new Database(dir.file('old.db'));
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT');
    for (const m of migrations.slice(0, -1)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    db.close();
    const s = open('old.db');
    s.scheduler.apply(seedCohortWrites({ id: 'c1', createdAtMs: 1000 }));
    expect(s.scheduler.load(2000, 3600_000).cohorts.map((c) => c.cohortId)).toEqual(['c1']);
    expect(s.integrityCheck()).toBe('ok');
  });

  it('prunes success rows written before they were dropped (step_successes) with their cohort', async () => {
    const s = open();
    s.scheduler.apply(seedCohortWrites({ id: 'c1', createdAtMs: 1000 }));
    const db = new Database(dir.file('state.db'));
    db.prepare('INSERT INTO step_successes (cohort_id, step_id, lease_id, peer_id, at_ms) VALUES (?, ?, ?, ?, ?)').run('c1', 'a', 'c1-l1', 'p1', 1015);
    db.close();
    const pruned = await s.retention.pruneHistory(3_600_000, 10);
    expect(pruned.removed).toMatchObject({ cohorts: 1, successes: 1 });
  });

  it('writes no row for a new cohort\'s untouched steps: load, step views and counts derive them from the schema', async () => {
    const s = open();
    const h = new CoreHarness(dagSchema({ a: [], b: [], c: ['a'] }));
    await s.scheduler.apply(h.hello('p1').writes);
    const lease = h.lastAssign('p1')!;
    // Only the step that changed in the input creating the cohort (leased) has a row.
    expect(s.db.prepare('SELECT step_id, status FROM steps').all()).toEqual([{ step_id: 'a', status: 'leased' }]);
    const cohort = (await s.readModel.listCohorts({ limit: 10 }))[0]!;
    expect(cohort.steps).toMatchObject({ total: 3, pending: 2, leased: 1, succeeded: 0 });
    expect((await s.readModel.stats()).steps.pending).toBe(3);
    const detail = (await s.readModel.cohortDetail(lease.cohortId))!;
    expect(detail.steps.map((v) => [v.stepId, v.status, v.attempts])).toEqual([['a', 'leased', 1], ['b', 'pending', 0], ['c', 'pending', 0]]);
    const loaded = s.scheduler.load(h.clock.now(), 3_600_000);
    expect(loaded.steps.map((r) => [r.stepId, r.status, r.attempts])).toEqual([['a', 'leased', 1], ['b', 'pending', 0], ['c', 'pending', 0]]);
    // Its first change writes its row (here the success).
    await s.scheduler.apply(h.finish('p1', lease.leaseId, 'a', true).writes);
    expect(s.db.prepare('SELECT step_id, status FROM steps').all()).toEqual([{ step_id: 'a', status: 'succeeded' }]);
    expect((await s.readModel.listCohorts({ limit: 10 }))[0]!.steps).toMatchObject({ total: 3, pending: 1, leased: 1, succeeded: 1 });
    // And a restarted core continues from the derived steps.
    const restored = new CoreHarness(h.schema);
    restored.restore(s.scheduler.load(h.clock.now(), 3_600_000));
  });

  it('refuses a database written by a newer taskshard', () => {
    open().close();
    const db = new Database(dir.file('state.db'));
    db.prepare('INSERT INTO schema_migrations VALUES (999, ?, 0)').run('future');
    db.close();
    expect(() => new SqliteStore(dir.file('state.db'))).toThrow(`database schema version 999 is newer than this taskshard knows (${newest})`);
  });

  it('names table, key and column when a stored row or its JSON is corrupt', async () => {
    const s = open();
    s.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
    const schemaJson = s.db.prepare('SELECT schema_json FROM cohort_schemas').pluck().get();
    s.db.prepare("UPDATE cohort_schemas SET schema_json = '{\"id\":1}'").run();
    expect(() => s.scheduler.load(2000, 1000)).toThrow(/^corrupt database: cohorts\[c1\]\.schema_json: id /);
    await expect(s.readModel.cohortDetail('c1')).rejects.toThrow(/^corrupt database: cohorts\[c1\]\.schema_json: id /);
    s.db.prepare("UPDATE cohort_schemas SET schema_json = 'not json'").run();
    expect(() => s.scheduler.load(2000, 1000)).toThrow(/^corrupt database: cohorts\[c1\]\.schema_json is not JSON/);
    s.db.prepare('UPDATE cohort_schemas SET schema_json = ?').run(schemaJson);
    // STRICT tables keep types, but not every invariant: a negative count is caught on the way out.
    s.db.prepare("UPDATE steps SET attempts = -1 WHERE step_id = 'a'").run();
    expect(() => s.scheduler.load(2000, 1000)).toThrow(/^corrupt database: steps\[c1\/a\]\.attempts: /);
    await expect(s.readModel.listPeers({ limit: 10 })).resolves.toHaveLength(1);
    s.db.prepare("UPDATE peers SET registration_json = '{}'").run();
    await expect(s.readModel.listPeers({ limit: 10 })).rejects.toThrow(/^corrupt database: peers\[c1\/p1\]\.registration_json: /);
  });

  it('proves prune needs no scan of open cohorts: the cutoff uses the resolution index', () => {
    const s = open();
    const plan = s.db.prepare("EXPLAIN QUERY PLAN SELECT cohort_id FROM cohorts WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < 5 AND status <> 'open' ORDER BY resolved_at_ms LIMIT 10").all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING INDEX cohorts_by_resolved/);
  });
});
