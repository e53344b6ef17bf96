/**
 * Numbered schema migrations. Each runs once, in order, inside a transaction,
 * and records its version in `schema_migrations`. Never edit a shipped
 * migration: add the next number.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE cohorts (
        cohort_id        TEXT PRIMARY KEY,
        repo             TEXT NOT NULL,
        base_ref         TEXT NOT NULL,
        cache_id         TEXT NOT NULL,
        pipeline_type    TEXT NOT NULL CHECK (pipeline_type IN ('independent', 'dependent')),
        isolated         INTEGER NOT NULL CHECK (isolated IN (0, 1)),
        schema_id        TEXT NOT NULL,
        schema_json      TEXT NOT NULL,
        digest           TEXT NOT NULL,
        base_sha         TEXT,
        patchsets_json   TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('open', 'complete', 'cancelled')),
        created_at_ms    INTEGER NOT NULL,
        resolved_at_ms   INTEGER,
        last_activity_ms INTEGER NOT NULL,
        seconds_saved    REAL
      ) STRICT;
      CREATE INDEX cohorts_by_status ON cohorts (status, resolved_at_ms);

      CREATE TABLE steps (
        cohort_id      TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id        TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'succeeded', 'failed')),
        attempts       INTEGER NOT NULL,
        failures       INTEGER NOT NULL,
        lost_leases    INTEGER NOT NULL,
        failed_on_json TEXT NOT NULL,
        built_by       TEXT,
        from_memo      INTEGER NOT NULL CHECK (from_memo IN (0, 1)),
        duration_ms    INTEGER,
        fail_reason    TEXT,
        fail_peer_id   TEXT,
        fail_exit_code INTEGER,
        fail_log_tail  TEXT,
        resolved_at_ms INTEGER,
        PRIMARY KEY (cohort_id, step_id)
      ) STRICT;

      -- One row per step that ever succeeded: the UNIQUE constraint makes "succeeded twice" impossible.
      CREATE TABLE step_successes (
        cohort_id TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id   TEXT NOT NULL,
        lease_id  TEXT,
        peer_id   TEXT,
        at_ms     INTEGER NOT NULL,
        UNIQUE (cohort_id, step_id)
      ) STRICT;

      CREATE TABLE leases (
        lease_id      TEXT PRIMARY KEY,
        cohort_id     TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id       TEXT NOT NULL,
        peer_id       TEXT NOT NULL,
        attempt       INTEGER NOT NULL,
        backup        INTEGER NOT NULL CHECK (backup IN (0, 1)),
        started_at_ms INTEGER NOT NULL,
        ended_at_ms   INTEGER,
        outcome       TEXT CHECK (outcome IS NULL OR outcome IN ('succeeded', 'failed', 'lost', 'aborted'))
      ) STRICT;
      CREATE INDEX leases_by_cohort ON leases (cohort_id);

      CREATE TABLE peers (
        cohort_id         TEXT NOT NULL REFERENCES cohorts (cohort_id),
        peer_id           TEXT NOT NULL,
        token_hash        TEXT NOT NULL,
        registration_json TEXT NOT NULL,
        resumable         INTEGER NOT NULL CHECK (resumable IN (0, 1)),
        status            TEXT NOT NULL CHECK (status IN ('connected', 'disconnected', 'gone', 'left')),
        joined_at_ms      INTEGER NOT NULL,
        grace_ends_at_ms  INTEGER,
        PRIMARY KEY (cohort_id, peer_id)
      ) STRICT;
      CREATE INDEX peers_by_status ON peers (status);

      CREATE TABLE memos (
        memo_key      TEXT PRIMARY KEY,
        step_id       TEXT NOT NULL,
        cohort_id     TEXT NOT NULL,
        peer_id       TEXT,
        duration_ms   INTEGER,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE durations (
        duration_key TEXT PRIMARY KEY,
        avg_ms       REAL NOT NULL,
        samples      INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE events (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        cohort_id TEXT NOT NULL REFERENCES cohorts (cohort_id),
        at_ms     INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        step_id   TEXT,
        peer_id   TEXT,
        detail    TEXT
      ) STRICT;
      CREATE INDEX events_by_cohort ON events (cohort_id, id);
    `,
  },
  {
    version: 2,
    name: 'typed causes',
    // Why a step failed, how a lease ended and how a cohort ended, as JSON (server/core/causes.ts).
    // Rows from before keep their text: failed steps become { kind: 'legacy', reason }, ended
    // leases { kind: 'unrecorded', outcome }; resolved cohorts get their outcome from their steps.
    sql: `
      ALTER TABLE steps ADD COLUMN fail_cause_json TEXT;
      ALTER TABLE leases ADD COLUMN end_json TEXT;
      ALTER TABLE cohorts ADD COLUMN outcome_json TEXT;
      UPDATE steps SET fail_cause_json = json_object('kind', 'legacy', 'reason', coalesce(fail_reason, 'failed')) WHERE status = 'failed';
      UPDATE leases SET end_json = json_object('kind', 'unrecorded', 'outcome', outcome) WHERE outcome IS NOT NULL;
      UPDATE cohorts SET outcome_json = CASE
          WHEN status = 'cancelled' THEN json_object('kind', 'cancelled', 'by', CASE WHEN EXISTS (SELECT 1 FROM events e
              WHERE e.cohort_id = cohorts.cohort_id AND e.kind = 'cohort.cancelled' AND e.detail LIKE 'abandoned%') THEN 'abandoned' ELSE 'admin' END)
          WHEN (SELECT count(*) FROM steps s WHERE s.cohort_id = cohorts.cohort_id AND s.status = 'failed') > 0
            THEN json_object('kind', 'failed', 'failedSteps', (SELECT count(*) FROM steps s WHERE s.cohort_id = cohorts.cohort_id AND s.status = 'failed'))
          ELSE json_object('kind', 'succeeded') END
        WHERE status <> 'open';
    `,
  },
  {
    version: 3,
    name: 'writer-claim-and-history-indexes',
    sql: `
      -- The writer fence: each store instance that writes claims the next epoch; a batch commits only
      -- while its writer's epoch is still the current one (see server/core/store-port.ts).
      CREATE TABLE store_writer (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        epoch INTEGER NOT NULL CHECK (epoch >= 1)
      ) STRICT;
      -- Pruning history walks cohorts by resolution time; open cohorts have none.
      CREATE INDEX cohorts_by_resolved ON cohorts (resolved_at_ms) WHERE resolved_at_ms IS NOT NULL;
      -- The read model lists cohorts and peers newest first.
      CREATE INDEX cohorts_by_created ON cohorts (created_at_ms, cohort_id);
      CREATE INDEX peers_by_joined ON peers (joined_at_ms, peer_id);
    `,
  },
  {
    version: 4,
    name: 'unshared steps',
    // Issue 19: a step no connected peer has the labels for is resolved 'unshared'. SQLite cannot
    // change a CHECK constraint in place, so the steps table is rebuilt with the same columns.
    // fail_cause_json holds why a step was resolved without a success: its StepFailCause when
    // failed, its UnsharedCause when unshared (fail_reason renders either).
    sql: `
      CREATE TABLE steps_v4 (
        cohort_id       TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'succeeded', 'failed', 'unshared')),
        attempts        INTEGER NOT NULL,
        failures        INTEGER NOT NULL,
        lost_leases     INTEGER NOT NULL,
        failed_on_json  TEXT NOT NULL,
        built_by        TEXT,
        from_memo       INTEGER NOT NULL CHECK (from_memo IN (0, 1)),
        duration_ms     INTEGER,
        fail_reason     TEXT,
        fail_peer_id    TEXT,
        fail_exit_code  INTEGER,
        fail_log_tail   TEXT,
        resolved_at_ms  INTEGER,
        fail_cause_json TEXT,
        PRIMARY KEY (cohort_id, step_id)
      ) STRICT;
      INSERT INTO steps_v4 (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                            duration_ms, fail_reason, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms, fail_cause_json)
        SELECT cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
               duration_ms, fail_reason, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms, fail_cause_json FROM steps;
      DROP TABLE steps;
      ALTER TABLE steps_v4 RENAME TO steps;
    `,
  },
  {
    version: 5,
    name: 'cache evidence',
    // What each peer's universe build took from the remote cache (--build-tool), one row per peer
    // and cohort. History: deleting the cohort row deletes its evidence (ON DELETE CASCADE), so
    // pruning a cohort prunes this too.
    sql: `
      CREATE TABLE cache_evidence (
        cohort_id         TEXT NOT NULL REFERENCES cohorts (cohort_id) ON DELETE CASCADE,
        peer_id           TEXT NOT NULL,
        reported_at_ms    INTEGER NOT NULL,
        tool              TEXT NOT NULL,
        hits              INTEGER NOT NULL CHECK (hits >= 0),
        misses            INTEGER NOT NULL CHECK (misses >= 0),
        missed_steps_json TEXT NOT NULL,
        source            TEXT NOT NULL,
        PRIMARY KEY (cohort_id, peer_id)
      ) STRICT;
    `,
  },
  {
    version: 6,
    name: 'cohort key',
    // `--cohort-key`: the key a cohort's peers named it by (null: matched by source state). Before,
    // the key was written into base_ref as `cohort-key:KEY` (and base_sha, patchsets_json emptied);
    // those rows get their key back here (their real refs were never stored).
    sql: `
      ALTER TABLE cohorts ADD COLUMN cohort_key TEXT;
      UPDATE cohorts SET cohort_key = substr(base_ref, 12) WHERE base_ref LIKE 'cohort-key:%';
    `,
  },
  {
    version: 7,
    name: 'lease event seqs',
    // Issue 17, fewer rows: an event that only restates a lease's grant or end gets no event row;
    // its place in the timeline (a number from the events' id sequence) goes on the lease row and
    // the read model derives the event (server/store/lease-events.ts). Older leases keep null here
    // and their event rows.
    sql: `
      ALTER TABLE leases ADD COLUMN granted_seq INTEGER;
      ALTER TABLE leases ADD COLUMN ended_seq INTEGER;
    `,
  },
  {
    version: 8,
    name: 'lean rows',
    // Issue 17, the store's CPU per assignment. (1) A cohort's schema moves to a table of its own,
    // written once with the cohort: the cohort row is updated after most inputs (its last activity),
    // and SQLite rebuilds a whole record to update one column, so every update read and compared the
    // schema's JSON (53 KB for 1,000 steps) in its overflow pages (~20 µs per update). (2) Leases, steps,
    // memos and durations become WITHOUT ROWID tables keyed by their primary key: a rowid table with a
    // text key keeps the key in a second B-tree, so every insert wrote two trees and every update
    // looked the row up twice. Same columns, same constraints; rows are copied as they are.
    sql: `
      CREATE TABLE cohort_schemas (
        cohort_id   TEXT PRIMARY KEY REFERENCES cohorts (cohort_id) ON DELETE CASCADE,
        schema_json TEXT NOT NULL
      ) STRICT;
      INSERT INTO cohort_schemas (cohort_id, schema_json) SELECT cohort_id, schema_json FROM cohorts;
      ALTER TABLE cohorts DROP COLUMN schema_json;

      CREATE TABLE leases_v8 (
        lease_id      TEXT NOT NULL PRIMARY KEY,
        cohort_id     TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id       TEXT NOT NULL,
        peer_id       TEXT NOT NULL,
        attempt       INTEGER NOT NULL,
        backup        INTEGER NOT NULL CHECK (backup IN (0, 1)),
        started_at_ms INTEGER NOT NULL,
        ended_at_ms   INTEGER,
        outcome       TEXT CHECK (outcome IS NULL OR outcome IN ('succeeded', 'failed', 'lost', 'aborted')),
        end_json      TEXT,
        granted_seq   INTEGER,
        ended_seq     INTEGER
      ) STRICT, WITHOUT ROWID;
      INSERT INTO leases_v8 (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq)
        SELECT lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq FROM leases;
      DROP TABLE leases;
      ALTER TABLE leases_v8 RENAME TO leases;
      CREATE INDEX leases_by_cohort ON leases (cohort_id);

      CREATE TABLE steps_v8 (
        cohort_id       TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'succeeded', 'failed', 'unshared')),
        attempts        INTEGER NOT NULL,
        failures        INTEGER NOT NULL,
        lost_leases     INTEGER NOT NULL,
        failed_on_json  TEXT NOT NULL,
        built_by        TEXT,
        from_memo       INTEGER NOT NULL CHECK (from_memo IN (0, 1)),
        duration_ms     INTEGER,
        fail_reason     TEXT,
        fail_peer_id    TEXT,
        fail_exit_code  INTEGER,
        fail_log_tail   TEXT,
        resolved_at_ms  INTEGER,
        fail_cause_json TEXT,
        PRIMARY KEY (cohort_id, step_id)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO steps_v8 SELECT cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                                  duration_ms, fail_reason, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms, fail_cause_json FROM steps;
      DROP TABLE steps;
      ALTER TABLE steps_v8 RENAME TO steps;

      CREATE TABLE memos_v8 (
        memo_key      TEXT NOT NULL PRIMARY KEY,
        step_id       TEXT NOT NULL,
        cohort_id     TEXT NOT NULL,
        peer_id       TEXT,
        duration_ms   INTEGER,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO memos_v8 SELECT memo_key, step_id, cohort_id, peer_id, duration_ms, created_at_ms, expires_at_ms FROM memos;
      DROP TABLE memos;
      ALTER TABLE memos_v8 RENAME TO memos;

      CREATE TABLE durations_v8 (
        duration_key TEXT NOT NULL PRIMARY KEY,
        avg_ms       REAL NOT NULL,
        samples      INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO durations_v8 SELECT duration_key, avg_ms, samples FROM durations;
      DROP TABLE durations;
      ALTER TABLE durations_v8 RENAME TO durations;
    `,
  },
  {
    version: 9,
    name: 'unwritten pending steps',
    // Issue 17: a new cohort's steps get no row until their first change (the step that a cohort
    // starts with, pending and never leased, is derived from its schema: restore, step views and
    // counts; lease-events.ts). Counting a cohort's steps then needs their number, kept here so
    // the cohort list does not parse schemas. Rows written before stay.
    sql: `
      ALTER TABLE cohorts ADD COLUMN step_count INTEGER NOT NULL DEFAULT 0 CHECK (step_count >= 0);
      UPDATE cohorts SET step_count = (SELECT json_array_length(s.schema_json, '$.steps') FROM cohort_schemas s WHERE s.cohort_id = cohorts.cohort_id);
    `,
  },
  {
    version: 10,
    name: 'leases keyed by cohort',
    // Issues 17 and 11: a lease row is found by its cohort, step and id (the core's record carries all
    // three), so the table is keyed by (cohort_id, step_id, lease_id) and leases_by_cohort goes: a grant
    // inserted a row and an index entry (two B-trees, the index's pages scattered over every open
    // cohort), and restore and the read model read a cohort's leases through the index and then looked
    // each row up by its key; now a cohort's leases, and a step's, are one range of the table. Lease
    // ids stay unique (the authority names them from a random prefix and a counter); the key no
    // longer enforces it alone. Rows are copied as they are.
    sql: `
      CREATE TABLE leases_v10 (
        cohort_id     TEXT NOT NULL REFERENCES cohorts (cohort_id),
        lease_id      TEXT NOT NULL,
        step_id       TEXT NOT NULL,
        peer_id       TEXT NOT NULL,
        attempt       INTEGER NOT NULL,
        backup        INTEGER NOT NULL CHECK (backup IN (0, 1)),
        started_at_ms INTEGER NOT NULL,
        ended_at_ms   INTEGER,
        outcome       TEXT CHECK (outcome IS NULL OR outcome IN ('succeeded', 'failed', 'lost', 'aborted')),
        end_json      TEXT,
        granted_seq   INTEGER,
        ended_seq     INTEGER,
        PRIMARY KEY (cohort_id, step_id, lease_id)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO leases_v10 (cohort_id, lease_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq)
        SELECT cohort_id, lease_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq FROM leases;
      DROP TABLE leases;
      ALTER TABLE leases_v10 RENAME TO leases;
    `,
  },
];
