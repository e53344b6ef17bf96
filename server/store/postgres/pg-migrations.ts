/**
 * Numbered schema migrations for the PostgreSQL store. Each runs once, in
 * order, inside a transaction that holds an advisory lock, so two authorities
 * starting at once against one database migrate it once. Never edit a shipped
 * migration: add the next number.
 *
 * The tables mirror the SQLite store's (server/store/migrations.ts) column for
 * column, so both read back through the same row schemas: times are epoch ms
 * in BIGINT, flags SMALLINT 0/1, JSON columns TEXT (validated on read).
 */
export interface PgMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The advisory lock key every migration run takes ("taskshar" as ASCII). */
export const migrationLockKey = 0x7461736b73686172n;

export const pgMigrations: readonly PgMigration[] = [
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
        isolated         SMALLINT NOT NULL CHECK (isolated IN (0, 1)),
        schema_id        TEXT NOT NULL,
        schema_json      TEXT NOT NULL,
        digest           TEXT NOT NULL,
        base_sha         TEXT,
        patchsets_json   TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('open', 'complete', 'cancelled')),
        created_at_ms    BIGINT NOT NULL,
        resolved_at_ms   BIGINT,
        last_activity_ms BIGINT NOT NULL,
        seconds_saved    DOUBLE PRECISION,
        outcome_json     TEXT
      );
      CREATE INDEX cohorts_by_status ON cohorts (status, resolved_at_ms);
      CREATE INDEX cohorts_by_resolved ON cohorts (resolved_at_ms) WHERE resolved_at_ms IS NOT NULL;
      CREATE INDEX cohorts_by_created ON cohorts (created_at_ms, cohort_id);

      CREATE TABLE steps (
        cohort_id       TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'succeeded', 'failed')),
        attempts        INTEGER NOT NULL,
        failures        INTEGER NOT NULL,
        lost_leases     INTEGER NOT NULL,
        failed_on_json  TEXT NOT NULL,
        built_by        TEXT,
        from_memo       SMALLINT NOT NULL CHECK (from_memo IN (0, 1)),
        duration_ms     BIGINT,
        fail_reason     TEXT,
        fail_cause_json TEXT,
        fail_peer_id    TEXT,
        fail_exit_code  INTEGER,
        fail_log_tail   TEXT,
        resolved_at_ms  BIGINT,
        PRIMARY KEY (cohort_id, step_id)
      );

      -- One row per step that ever succeeded: the UNIQUE constraint makes "succeeded twice" impossible.
      CREATE TABLE step_successes (
        cohort_id TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id   TEXT NOT NULL,
        lease_id  TEXT,
        peer_id   TEXT,
        at_ms     BIGINT NOT NULL,
        UNIQUE (cohort_id, step_id)
      );

      CREATE TABLE leases (
        lease_id      TEXT PRIMARY KEY,
        cohort_id     TEXT NOT NULL REFERENCES cohorts (cohort_id),
        step_id       TEXT NOT NULL,
        peer_id       TEXT NOT NULL,
        attempt       INTEGER NOT NULL,
        backup        SMALLINT NOT NULL CHECK (backup IN (0, 1)),
        started_at_ms BIGINT NOT NULL,
        ended_at_ms   BIGINT,
        outcome       TEXT CHECK (outcome IS NULL OR outcome IN ('succeeded', 'failed', 'lost', 'aborted')),
        end_json      TEXT
      );
      CREATE INDEX leases_by_cohort ON leases (cohort_id);

      CREATE TABLE peers (
        cohort_id         TEXT NOT NULL REFERENCES cohorts (cohort_id),
        peer_id           TEXT NOT NULL,
        token_hash        TEXT NOT NULL,
        registration_json TEXT NOT NULL,
        resumable         SMALLINT NOT NULL CHECK (resumable IN (0, 1)),
        status            TEXT NOT NULL CHECK (status IN ('connected', 'disconnected', 'gone', 'left')),
        joined_at_ms      BIGINT NOT NULL,
        grace_ends_at_ms  BIGINT,
        PRIMARY KEY (cohort_id, peer_id)
      );
      CREATE INDEX peers_by_status ON peers (status);
      CREATE INDEX peers_by_joined ON peers (joined_at_ms, peer_id);

      CREATE TABLE memos (
        memo_key      TEXT PRIMARY KEY,
        step_id       TEXT NOT NULL,
        cohort_id     TEXT NOT NULL,
        peer_id       TEXT,
        duration_ms   BIGINT,
        created_at_ms BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL
      );

      CREATE TABLE durations (
        duration_key TEXT PRIMARY KEY,
        avg_ms       DOUBLE PRECISION NOT NULL,
        samples      INTEGER NOT NULL
      );

      CREATE TABLE events (
        id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        cohort_id TEXT NOT NULL REFERENCES cohorts (cohort_id),
        at_ms     BIGINT NOT NULL,
        kind      TEXT NOT NULL,
        step_id   TEXT,
        peer_id   TEXT,
        detail    TEXT
      );
      CREATE INDEX events_by_cohort ON events (cohort_id, id);

      -- The writer fence (server/core/store-port.ts): each store instance that writes claims the next
      -- epoch; a batch commits only while its writer's epoch is still the current one.
      CREATE TABLE store_writer (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        epoch BIGINT NOT NULL CHECK (epoch >= 1)
      );
    `,
  },
  {
    version: 2,
    name: 'leader lease',
    // One row: who is the active authority, in which term, until when (database clock).
    // A takeover raises the term; every commit batch of an authority checks its term in the same
    // transaction (server/ha/leader-lease.ts), so a deposed authority cannot write.
    sql: `
      CREATE TABLE leader_lease (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        term       BIGINT NOT NULL CHECK (term >= 0),
        holder     TEXT,
        expires_at TIMESTAMPTZ NOT NULL
      );
      INSERT INTO leader_lease (id, term, holder, expires_at) VALUES (1, 0, NULL, '-infinity');
    `,
  },
];
