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
