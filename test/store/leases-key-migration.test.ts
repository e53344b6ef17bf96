import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations } from '../../server/store/migrations.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-leases-key-');
});
afterEach(() => dir.remove());

/** A database as taskshard wrote it at schema version 9: one open cohort, an ended lease and a live one. */
function versionNineDb(path: string): void {
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT');
  for (const m of migrations.filter((x) => x.version <= 9)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
  }
  const schema = JSON.stringify({ id: 'dag', universe: '//...', steps: [{ id: 'a', target: '//a', needs: [] }, { id: 'b', target: '//b', needs: [] }] });
  db.prepare(
    `INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, digest, base_sha, patchsets_json, status, created_at_ms,
                          resolved_at_ms, last_activity_ms, seconds_saved, outcome_json, cohort_key, step_count)
     VALUES ('c1', 'r', 'main', 'cache', 'independent', 0, 'dag', 'd', NULL, '[]', 'open', 1, NULL, 5, NULL, NULL, NULL, 2)`,
  ).run();
  db.prepare('INSERT INTO cohort_schemas (cohort_id, schema_json) VALUES (?, ?)').run('c1', schema);
  db.prepare(`INSERT INTO steps VALUES ('c1', 'a', 'succeeded', 1, 0, 0, '[]', 'p1', 0, 3, NULL, NULL, NULL, NULL, 4, NULL)`).run();
  const lease = db.prepare(
    'INSERT INTO leases (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq) VALUES (?, ?, ?, ?, 1, 0, ?, ?, ?, ?, NULL, NULL)',
  );
  lease.run('l1', 'c1', 'a', 'p1', 1, 4, 'succeeded', '{"kind":"succeeded"}');
  lease.run('l2', 'c1', 'b', 'p1', 4, null, null, null);
  db.close();
}

describe('migration 10 (leases keyed by cohort, step and lease)', () => {
  it('keeps every lease row, reads a cohort\'s leases by the key (no second index), and ends a lease written before it', () => {
    versionNineDb(dir.file('old.db'));
    const store = new SqliteStore(dir.file('old.db'));
    try {
      const before = store.scheduler.load(10, 1_000);
      expect(before.leases.map((l) => [l.leaseId, l.stepId, l.end])).toEqual([
        ['l1', 'a', { kind: 'succeeded' }],
        ['l2', 'b', null],
      ]);
      expect(before.steps.find((s) => s.stepId === 'b')?.status).toBe('leased');
      expect(store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leases'").all()).toEqual([]);
      const plan = (store.db.prepare('EXPLAIN QUERY PLAN SELECT * FROM leases WHERE cohort_id = ?').all('c1') as { detail: string }[]).map((r) => r.detail).join('; ');
      expect(plan).toMatch(/USING PRIMARY KEY \(cohort_id=\?\)/);
      const live = before.leases.find((l) => l.leaseId === 'l2')!;
      store.scheduler.apply([{ table: 'lease', row: { ...live, endedAtMs: 9, end: { kind: 'lost', why: 'bye' } } }]);
      expect(store.db.prepare("SELECT count(*) AS n FROM leases WHERE lease_id = 'l2'").get()).toEqual({ n: 1 });
      expect(store.scheduler.load(10, 1_000).leases.find((l) => l.leaseId === 'l2')).toMatchObject({ endedAtMs: 9, end: { kind: 'lost', why: 'bye' } });
    } finally {
      store.close();
    }
  });
});
