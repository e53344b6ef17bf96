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
  {
    version: 3,
    name: 'apply function',
    // A commit batch in one statement: the client sends the fence and every write as one JSON
    // array, and this function runs them in order inside the caller's transaction. One round trip
    // and one statement for the client to build and parse, instead of one per write. A guard that
    // refuses a write raises TSGRD with the write's index; a failed fence raises TSDEP.
    sql: `
      CREATE FUNCTION taskshard_apply(p_claim boolean, p_epoch bigint, p_term bigint, p_holder text, p_writes jsonb) RETURNS bigint
      LANGUAGE plpgsql AS $fn$
      DECLARE
        w jsonb;
        r jsonb;
        n integer;
        i integer := 0;
        v_epoch bigint;
      BEGIN
        IF p_claim THEN
          INSERT INTO store_writer (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET epoch = store_writer.epoch + 1 RETURNING epoch INTO v_epoch;
        ELSE
          UPDATE store_writer SET epoch = epoch WHERE id = 1 AND epoch = p_epoch
            AND (p_term IS NULL OR EXISTS (SELECT 1 FROM leader_lease l WHERE l.id = 1 AND l.term = p_term AND l.holder = p_holder));
          GET DIAGNOSTICS n = ROW_COUNT;
          IF n <> 1 THEN RAISE EXCEPTION 'writer deposed' USING ERRCODE = 'TSDEP'; END IF;
          v_epoch := p_epoch;
        END IF;
        FOR w IN SELECT value FROM jsonb_array_elements(p_writes) LOOP
          r := w->'r';
          n := 1;
          CASE w->>'t'
          WHEN 'cohort' THEN
            INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, schema_json, digest,
                                 base_sha, patchsets_json, status, created_at_ms, resolved_at_ms, last_activity_ms, seconds_saved, outcome_json)
            VALUES (r->>'cohort_id', r->>'repo', r->>'base_ref', r->>'cache_id', r->>'pipeline_type', (r->>'isolated')::smallint, r->>'schema_id',
                    r->>'schema_json', r->>'digest', r->>'base_sha', r->>'patchsets_json', r->>'status', (r->>'created_at_ms')::bigint,
                    (r->>'resolved_at_ms')::bigint, (r->>'last_activity_ms')::bigint, (r->>'seconds_saved')::double precision, r->>'outcome_json')
            ON CONFLICT (cohort_id) DO UPDATE SET patchsets_json = excluded.patchsets_json, status = excluded.status,
              resolved_at_ms = excluded.resolved_at_ms, last_activity_ms = excluded.last_activity_ms, seconds_saved = excluded.seconds_saved,
              outcome_json = excluded.outcome_json
            WHERE cohorts.status <> 'cancelled' OR excluded.status = 'cancelled';
            GET DIAGNOSTICS n = ROW_COUNT;
          WHEN 'step' THEN
            INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                               duration_ms, fail_reason, fail_cause_json, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms)
            VALUES (r->>'cohort_id', r->>'step_id', r->>'status', (r->>'attempts')::integer, (r->>'failures')::integer, (r->>'lost_leases')::integer,
                    r->>'failed_on_json', r->>'built_by', (r->>'from_memo')::smallint, (r->>'duration_ms')::bigint, r->>'fail_reason',
                    r->>'fail_cause_json', r->>'fail_peer_id', (r->>'fail_exit_code')::integer, r->>'fail_log_tail', (r->>'resolved_at_ms')::bigint)
            ON CONFLICT (cohort_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
              failures = excluded.failures, lost_leases = excluded.lost_leases, failed_on_json = excluded.failed_on_json,
              built_by = excluded.built_by, from_memo = excluded.from_memo, duration_ms = excluded.duration_ms,
              fail_reason = excluded.fail_reason, fail_cause_json = excluded.fail_cause_json, fail_peer_id = excluded.fail_peer_id,
              fail_exit_code = excluded.fail_exit_code, fail_log_tail = excluded.fail_log_tail, resolved_at_ms = excluded.resolved_at_ms
            WHERE steps.status <> 'succeeded'
               OR (excluded.status = 'succeeded' AND excluded.built_by IS NOT DISTINCT FROM steps.built_by AND excluded.from_memo = steps.from_memo);
            GET DIAGNOSTICS n = ROW_COUNT;
          WHEN 'success' THEN
            INSERT INTO step_successes (cohort_id, step_id, lease_id, peer_id, at_ms)
            VALUES (r->>'cohort_id', r->>'step_id', r->>'lease_id', r->>'peer_id', (r->>'at_ms')::bigint);
          WHEN 'lease' THEN
            INSERT INTO leases (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json)
            VALUES (r->>'lease_id', r->>'cohort_id', r->>'step_id', r->>'peer_id', (r->>'attempt')::integer, (r->>'backup')::smallint,
                    (r->>'started_at_ms')::bigint, (r->>'ended_at_ms')::bigint, r->>'outcome', r->>'end_json')
            ON CONFLICT (lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json
            WHERE leases.outcome IS NULL
               OR (excluded.outcome IS NOT DISTINCT FROM leases.outcome AND excluded.end_json IS NOT DISTINCT FROM leases.end_json
                   AND excluded.ended_at_ms IS NOT DISTINCT FROM leases.ended_at_ms);
            GET DIAGNOSTICS n = ROW_COUNT;
          WHEN 'peer' THEN
            INSERT INTO peers (cohort_id, peer_id, token_hash, registration_json, resumable, status, joined_at_ms, grace_ends_at_ms)
            VALUES (r->>'cohort_id', r->>'peer_id', r->>'token_hash', r->>'registration_json', (r->>'resumable')::smallint, r->>'status',
                    (r->>'joined_at_ms')::bigint, (r->>'grace_ends_at_ms')::bigint)
            ON CONFLICT (cohort_id, peer_id) DO UPDATE SET token_hash = excluded.token_hash, registration_json = excluded.registration_json,
              resumable = excluded.resumable, status = excluded.status, joined_at_ms = excluded.joined_at_ms, grace_ends_at_ms = excluded.grace_ends_at_ms;
          WHEN 'memo' THEN
            INSERT INTO memos (memo_key, step_id, cohort_id, peer_id, duration_ms, created_at_ms, expires_at_ms)
            VALUES (r->>'memo_key', r->>'step_id', r->>'cohort_id', r->>'peer_id', (r->>'duration_ms')::bigint, (r->>'created_at_ms')::bigint,
                    (r->>'expires_at_ms')::bigint)
            ON CONFLICT (memo_key) DO UPDATE SET step_id = excluded.step_id, cohort_id = excluded.cohort_id, peer_id = excluded.peer_id,
              duration_ms = excluded.duration_ms, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms;
          WHEN 'memo.delete' THEN
            DELETE FROM memos WHERE memo_key = r->>'memo_key';
          WHEN 'duration' THEN
            INSERT INTO durations (duration_key, avg_ms, samples) VALUES (r->>'duration_key', (r->>'avg_ms')::double precision, (r->>'samples')::integer)
            ON CONFLICT (duration_key) DO UPDATE SET avg_ms = excluded.avg_ms, samples = excluded.samples;
          WHEN 'event' THEN
            INSERT INTO events (cohort_id, at_ms, kind, step_id, peer_id, detail)
            VALUES (r->>'cohort_id', (r->>'at_ms')::bigint, r->>'kind', r->>'step_id', r->>'peer_id', r->>'detail');
          END CASE;
          IF n = 0 THEN RAISE EXCEPTION '%', i USING ERRCODE = 'TSGRD'; END IF;
          i := i + 1;
        END LOOP;
        RETURN v_epoch;
      END
      $fn$;
    `,
  },
  {
    version: 4,
    name: 'unshared steps',
    // Issue 19: a step no connected peer has the labels for is resolved 'unshared'.
    // fail_cause_json holds why a step was resolved without a success: its StepFailCause when
    // failed, its UnsharedCause when unshared (fail_reason renders either).
    sql: `
      ALTER TABLE steps DROP CONSTRAINT steps_status_check;
      ALTER TABLE steps ADD CONSTRAINT steps_status_check CHECK (status IN ('pending', 'leased', 'succeeded', 'failed', 'unshared'));
    `,
  },
  {
    version: 5,
    name: 'cache evidence',
    // As SQLite's migration 5: one row per peer and cohort, deleted with its cohort row.
    sql: `
      CREATE TABLE cache_evidence (
        cohort_id         TEXT NOT NULL REFERENCES cohorts (cohort_id) ON DELETE CASCADE,
        peer_id           TEXT NOT NULL,
        reported_at_ms    BIGINT NOT NULL,
        tool              TEXT NOT NULL,
        hits              BIGINT NOT NULL CHECK (hits >= 0),
        misses            BIGINT NOT NULL CHECK (misses >= 0),
        missed_steps_json TEXT NOT NULL,
        source            TEXT NOT NULL,
        PRIMARY KEY (cohort_id, peer_id)
      );
    `,
  },
  {
    version: 6,
    name: 'cohort key',
    // `--cohort-key`: the key a cohort's peers named it by (null: matched by source state), as in the
    // SQLite store's migration 6 (rows from before, which carried it as base_ref `cohort-key:KEY`,
    // get it back). taskshard_apply is redefined to write it: version 3's function with cohort_key
    // added to the cohort insert (built from version 3's text below, so the two cannot drift).
    get sql(): string {
      return `
      ALTER TABLE cohorts ADD COLUMN cohort_key TEXT;
      UPDATE cohorts SET cohort_key = substr(base_ref, 12) WHERE base_ref LIKE 'cohort-key:%';
      ${applyFunctionWithCohortKey(pgMigrations[2]!.sql)}`;
    },
  },
  {
    version: 7,
    name: 'lease event seqs',
    // As SQLite's migration 7: an event that only restates a lease's grant or end gets no row; its
    // number from the events' id sequence goes on the lease row (server/store/lease-events.ts).
    // taskshard_apply takes the batch's count of event numbers (p_slots), takes them from the
    // sequence in one step, and writes event ids and lease seqs from them (version 6's function
    // with these edits, built from its text so the two cannot drift).
    get sql(): string {
      return `
      ALTER TABLE leases ADD COLUMN granted_seq BIGINT;
      ALTER TABLE leases ADD COLUMN ended_seq BIGINT;
      DROP FUNCTION taskshard_apply(boolean, bigint, bigint, text, jsonb);
      ${applyFunctionWithEventSlots(applyFunctionWithCohortKey(pgMigrations[2]!.sql))}`;
    },
  },
  {
    version: 8,
    name: 'cohort updates',
    // A cohort write after the one that created it sends only what changes (status, patchsets, times,
    // outcome): the 'cohort.update' writes of taskshard_apply. The schema JSON and the other columns set
    // at creation are no longer sent and parsed with every input that touches a cohort. A row that is
    // missing raises TSMIS. Version 7's function with this branch added (built from its text).
    get sql(): string {
      return applyFunctionWithCohortUpdates(applyFunctionWithEventSlots(applyFunctionWithCohortKey(pgMigrations[2]!.sql)));
    },
  },
  {
    version: 9,
    name: 'success is final',
    // As the SQLite store's step upsert: a succeeded step's row may be written again (its counters) only
    // with the same success (builder, memo, time, duration), so a second success of a step is refused by the
    // step row's guard. That was step_successes' UNIQUE constraint; the client no longer sends 'success'
    // writes (nothing read the table; old rows stay until pruned). Version 8's function with the stricter
    // guard (built from its text).
    get sql(): string {
      return applyFunctionWithFinalSuccess(pgMigrations[7]!.sql);
    },
  },
];

/** Version 8's `taskshard_apply` with the step guard holding a success's time and duration too. */
function applyFunctionWithFinalSuccess(v8: string): string {
  return edited(v8, 9, [
    ["OR (excluded.status = 'succeeded' AND excluded.built_by IS NOT DISTINCT FROM steps.built_by AND excluded.from_memo = steps.from_memo);",
      `OR (excluded.status = 'succeeded' AND excluded.built_by IS NOT DISTINCT FROM steps.built_by AND excluded.from_memo = steps.from_memo
                   AND excluded.resolved_at_ms IS NOT DISTINCT FROM steps.resolved_at_ms AND excluded.duration_ms IS NOT DISTINCT FROM steps.duration_ms);`],
  ]);
}

/** Version 7's `taskshard_apply` with 'cohort.update' writes (the changing columns of an existing cohort). */
function applyFunctionWithCohortUpdates(v7: string): string {
  return edited(v7, 8, [
    ['CREATE FUNCTION taskshard_apply(p_claim boolean, p_epoch bigint, p_term bigint, p_holder text, p_writes jsonb, p_slots integer)',
      'CREATE OR REPLACE FUNCTION taskshard_apply(p_claim boolean, p_epoch bigint, p_term bigint, p_holder text, p_writes jsonb, p_slots integer)'],
    ["          WHEN 'step' THEN\n",
      `          WHEN 'cohort.update' THEN
            UPDATE cohorts SET patchsets_json = r->>'patchsets_json', status = r->>'status', resolved_at_ms = (r->>'resolved_at_ms')::bigint,
              last_activity_ms = (r->>'last_activity_ms')::bigint, seconds_saved = (r->>'seconds_saved')::double precision, outcome_json = r->>'outcome_json'
            WHERE cohort_id = r->>'cohort_id' AND (status <> 'cancelled' OR r->>'status' = 'cancelled');
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 AND NOT EXISTS (SELECT 1 FROM cohorts WHERE cohort_id = r->>'cohort_id') THEN
              RAISE EXCEPTION '%', i USING ERRCODE = 'TSMIS';
            END IF;
          WHEN 'step' THEN\n`],
  ]);
}

/** Version 6's `taskshard_apply` with `p_slots`: event ids and lease event seqs from one sequence. */
function applyFunctionWithEventSlots(v6: string): string {
  return edited(v6, 7, [
    ['CREATE OR REPLACE FUNCTION taskshard_apply(p_claim boolean, p_epoch bigint, p_term bigint, p_holder text, p_writes jsonb)',
      'CREATE FUNCTION taskshard_apply(p_claim boolean, p_epoch bigint, p_term bigint, p_holder text, p_writes jsonb, p_slots integer)'],
    ['        v_epoch bigint;\n', '        v_epoch bigint;\n        v_base bigint := 0;\n'],
    ['        FOR w IN SELECT value FROM jsonb_array_elements(p_writes) LOOP',
      `        IF p_slots > 0 THEN
          v_base := nextval(pg_get_serial_sequence('events', 'id'));
          PERFORM setval(pg_get_serial_sequence('events', 'id'), v_base + p_slots - 1);
        END IF;
        FOR w IN SELECT value FROM jsonb_array_elements(p_writes) LOOP`],
    ['started_at_ms, ended_at_ms, outcome, end_json)\n', 'started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq)\n'],
    ["(r->>'started_at_ms')::bigint, (r->>'ended_at_ms')::bigint, r->>'outcome', r->>'end_json')",
      "(r->>'started_at_ms')::bigint, (r->>'ended_at_ms')::bigint, r->>'outcome', r->>'end_json',\n                    v_base + (r->>'granted_slot')::bigint, v_base + (r->>'ended_slot')::bigint)"],
    ['ON CONFLICT (lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json\n',
      'ON CONFLICT (lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json,\n              granted_seq = coalesce(leases.granted_seq, excluded.granted_seq), ended_seq = coalesce(excluded.ended_seq, leases.ended_seq)\n'],
    ['INSERT INTO events (cohort_id, at_ms, kind, step_id, peer_id, detail)\n            VALUES (',
      "INSERT INTO events (id, cohort_id, at_ms, kind, step_id, peer_id, detail) OVERRIDING SYSTEM VALUE\n            VALUES (v_base + (r->>'slot')::bigint, "],
  ]);
}

function edited(sql: string, version: number, edits: readonly (readonly [string, string])[]): string {
  let out = sql;
  for (const [from, to] of edits) {
    if (out.split(from).length !== 2) throw new Error(`pg migration ${version}: expected exactly one "${from}" in the function it edits`);
    out = out.replace(from, to);
  }
  return out;
}

/** Version 3's `taskshard_apply` as `CREATE OR REPLACE`, with `cohort_key` written by the cohort insert. */
function applyFunctionWithCohortKey(v3: string): string {
  const edits: readonly (readonly [string, string])[] = [
    ['CREATE FUNCTION taskshard_apply(', 'CREATE OR REPLACE FUNCTION taskshard_apply('],
    ['last_activity_ms, seconds_saved, outcome_json)', 'last_activity_ms, seconds_saved, outcome_json, cohort_key)'],
    ["(r->>'seconds_saved')::double precision, r->>'outcome_json')", "(r->>'seconds_saved')::double precision, r->>'outcome_json', r->>'cohort_key')"],
  ];
  let sql = v3;
  for (const [from, to] of edits) {
    if (sql.split(from).length !== 2) throw new Error(`pg migration 6: expected exactly one "${from}" in migration 3`);
    sql = sql.replace(from, to);
  }
  return sql;
}
