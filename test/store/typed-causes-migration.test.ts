import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations } from '../../server/store/migrations.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-causes-');
});
afterEach(() => dir.remove());

/** A database as taskshard wrote it before typed causes (schema version 1), with prose reasons only. */
function versionOneDb(path: string): void {
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT');
  db.exec(migrations[0]!.sql);
  db.prepare('INSERT INTO schema_migrations VALUES (1, ?, 0)').run(migrations[0]!.name);
  const schema = JSON.stringify({ id: 'dag', universe: '//...', steps: [{ id: 'a', target: '//a', needs: [] }, { id: 'b', target: '//b', needs: ['a'] }] });
  const cohort = db.prepare(`INSERT INTO cohorts VALUES (?, 'r', 'main', 'cache', 'independent', 0, 'dag', ?, 'd', NULL, '[]', ?, 1, ?, 1, NULL)`);
  cohort.run('c1', schema, 'complete', 5);
  cohort.run('c2', schema, 'cancelled', 6);
  const step = db.prepare(`INSERT INTO steps VALUES (?, ?, ?, 1, 1, 0, '[]', NULL, 0, NULL, ?, NULL, NULL, NULL, NULL)`);
  step.run('c1', 'a', 'failed', 'failed 2 times; last on p with exit 1');
  step.run('c1', 'b', 'failed', 'needs "a", which failed');
  step.run('c2', 'a', 'failed', 'abandoned: no peer for the retention period');
  step.run('c2', 'b', 'failed', 'abandoned: no peer for the retention period');
  db.prepare(`INSERT INTO leases VALUES ('l1', 'c1', 'a', 'p', 1, 0, 1, 2, 'failed')`).run();
  db.prepare(`INSERT INTO events (cohort_id, at_ms, kind, detail) VALUES ('c2', 6, 'cohort.cancelled', 'abandoned: no peer for the retention period')`).run();
  db.close();
}

describe('migration 2 (typed causes)', () => {
  it('keeps what an older database knew: prose reasons become legacy causes, outcomes are derived', () => {
    versionOneDb(dir.file('old.db'));
    const store = new SqliteStore(dir.file('old.db'));
    try {
      const snap = store.scheduler.load(10, 1_000);
      expect(snap.cohorts.map((c) => [c.cohortId, c.outcome])).toEqual([
        ['c1', { kind: 'failed', failedSteps: 2 }],
        ['c2', { kind: 'cancelled', by: 'abandoned' }],
      ]);
      expect(snap.steps.find((s) => s.cohortId === 'c1' && s.stepId === 'b')?.failCause).toEqual({ kind: 'legacy', reason: 'needs "a", which failed' });
      expect(snap.leases).toEqual([expect.objectContaining({ leaseId: 'l1', end: { kind: 'unrecorded', outcome: 'failed' } })]);
    } finally {
      store.close();
    }
  });
});

describe('migration 6 (cohort key)', () => {
  it('a cohort an older authority named by `--cohort-key` (base_ref `cohort-key:KEY`) gets its key as a field; others get null', () => {
    versionOneDb(dir.file('old.db'));
    const db = new Database(dir.file('old.db'));
    const schema = JSON.stringify({ id: 'dag', universe: '//...', steps: [{ id: 'a', target: '//a', needs: [] }] });
    db.prepare(`INSERT INTO cohorts VALUES ('c3', 'r', 'cohort-key:run-7', 'cache', 'independent', 0, 'dag', ?, 'd', NULL, '[]', 'open', 7, NULL, 7, NULL)`).run(schema);
    db.prepare(`INSERT INTO steps VALUES ('c3', 'a', 'pending', 0, 0, 0, '[]', NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL)`).run();
    db.close();
    const store = new SqliteStore(dir.file('old.db'));
    try {
      const snap = store.scheduler.load(10, 1_000);
      expect(snap.cohorts.map((c) => [c.cohortId, c.cohortKey])).toEqual([
        ['c1', null],
        ['c2', null],
        ['c3', 'run-7'],
      ]);
    } finally {
      store.close();
    }
  });
});

/** A database as taskshard wrote it at schema version 7 (the schema on the cohort row; rowid tables). */
function versionSevenDb(path: string): void {
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT');
  for (const m of migrations.filter((m) => m.version <= 7)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
  }
  const schema = JSON.stringify({ id: 'dag', universe: '//...', steps: [{ id: 'a', target: '//a', needs: [] }, { id: 'b', target: '//b', needs: ['a'] }] });
  db.prepare(`INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, schema_json, digest, base_sha, patchsets_json,
              status, created_at_ms, resolved_at_ms, last_activity_ms, seconds_saved, outcome_json, cohort_key)
              VALUES ('c1', 'r', 'main', 'cache', 'independent', 0, 'dag', ?, 'd', NULL, '["refs/changes/1"]', 'open', 1, NULL, 30, NULL, NULL, NULL)`).run(schema);
  const step = db.prepare(`INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo, duration_ms, resolved_at_ms)
                           VALUES ('c1', ?, ?, ?, 0, 0, '[]', ?, 0, ?, ?)`);
  step.run('a', 'succeeded', 1, 'p1', 9, 20);
  step.run('b', 'pending', 0, null, null, null);
  const lease = db.prepare(`INSERT INTO leases (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq)
                            VALUES (?, 'c1', ?, 'p1', 1, 0, ?, ?, ?, ?, ?, ?)`);
  lease.run('l1', 'a', 11, 20, 'succeeded', '{"kind":"succeeded"}', 2, 3);
  lease.run('l2', 'b', 20, null, null, null, 4, null);
  db.prepare(`INSERT INTO events (id, cohort_id, at_ms, kind, detail) VALUES (1, 'c1', 1, 'cohort.created', 'dag d')`).run();
  db.prepare(`UPDATE sqlite_sequence SET seq = 4 WHERE name = 'events'`).run();
  db.prepare(`INSERT INTO peers VALUES ('c1', 'p1', 'h', ?, 1, 'connected', 1, NULL)`).run(
    JSON.stringify({ repo: 'r', baseRef: 'main', baseSha: null, patchsets: ['refs/changes/1'], changeRef: null, pipelineName: 'check', pipelineType: 'independent', isolated: false, cacheId: 'cache' }),
  );
  db.prepare(`INSERT INTO memos VALUES ('m1', 'a', 'c1', 'p1', 9, 20, 5000)`).run();
  db.prepare(`INSERT INTO durations VALUES ('k1', 9.5, 2)`).run();
  db.close();
}

describe('migrations 8 (lean rows) and 9 (unwritten pending steps)', () => {
  it('moves the schema off the cohort row and rebuilds leases, steps, memos and durations without rowids, keeping every row', async () => {
    versionSevenDb(dir.file('v7.db'));
    const store = new SqliteStore(dir.file('v7.db'));
    try {
      const tables = store.db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all() as { name: string; sql: string }[];
      const sqlOf = (name: string): string => tables.find((t) => t.name === name)?.sql ?? '';
      for (const name of ['leases', 'steps', 'memos', 'durations']) expect(sqlOf(name)).toMatch(/WITHOUT ROWID$/);
      expect(sqlOf('cohorts')).not.toMatch(/schema_json/);
      // Migration 9: the number of steps, from the schema.
      expect(store.db.prepare('SELECT step_count FROM cohorts').pluck().all()).toEqual([2]);
      const snap = store.scheduler.load(100, 1_000);
      expect(snap.cohorts.map((c) => [c.cohortId, c.schema.steps.map((s) => s.id), c.patchsets, c.lastActivityMs])).toEqual([['c1', ['a', 'b'], ['refs/changes/1'], 30]]);
      expect(snap.steps.map((s) => [s.stepId, s.status, s.attempts, s.builtBy])).toEqual([['a', 'succeeded', 1, 'p1'], ['b', 'leased', 1, null]]);
      expect(snap.leases.map((l) => [l.leaseId, l.end])).toEqual([['l1', { kind: 'succeeded' }], ['l2', null]]);
      expect(snap.memos.map((m) => m.memoKey)).toEqual(['m1']);
      expect(snap.durations).toEqual([{ durationKey: 'k1', avgMs: 9.5, samples: 2 }]);
      const detail = await store.readModel.cohortDetail('c1');
      expect(detail?.timeline.map((e) => [e.seq, e.kind])).toEqual([[1, 'cohort.created'], [2, 'step.leased'], [3, 'step.succeeded'], [4, 'step.leased']]);
      expect(detail?.cohort.steps).toMatchObject({ total: 2, succeeded: 1, leased: 1, pending: 0 });
      expect(store.integrityCheck()).toBe('ok');
      expect(store.db.pragma('foreign_key_check')).toEqual([]);
    } finally {
      store.close();
    }
  });
});
