/**
 * The statements a commit batch runs on SQLite (sqlite-scheduler-store.ts). Parameters are
 * positional (`?`, bound from arguments in order): better-sqlite3 binds a named parameter by
 * looking its name up on the object passed, one property read per column, and the object
 * had to be built first; positional binding was about a fifth cheaper per statement.
 *
 * A row that already exists is changed by a plain `UPDATE` carrying the row's guard in its
 * `WHERE`, not by an upsert: the upsert first tries the insert (its constraint check and record)
 * before it falls back to the same update (an `UPDATE` of a step row took ~3.2 µs against ~4.9 µs
 * for the upsert). An `UPDATE` that matches no row is followed by the upsert, which inserts a
 * missing row or, when the guard refused, changes nothing: then the write is a conflict.
 * A step row is the exception: its first write is usually an insert (a new cohort's steps get no
 * row until they change, migration 9), so it is written by the upsert alone.
 */
export const sqliteWriteSql = {
  // A new cohort's whole row (an upsert with the cancelled guard, as on PostgreSQL).
  cohortInsert: `
    INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, digest,
                         base_sha, patchsets_json, status, created_at_ms, resolved_at_ms, last_activity_ms, seconds_saved, outcome_json, cohort_key, step_count)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cohort_id) DO UPDATE SET patchsets_json = excluded.patchsets_json, status = excluded.status,
      resolved_at_ms = excluded.resolved_at_ms, last_activity_ms = excluded.last_activity_ms, seconds_saved = excluded.seconds_saved,
      outcome_json = excluded.outcome_json
    WHERE cohorts.status <> 'cancelled' OR excluded.status = 'cancelled'`,
  // A new cohort's schema, in its own table (migration 8): the cohort row stays small, so updating it
  // does not rebuild a record holding the schema. Written once; a second write of it is refused.
  cohortSchemaInsert: 'INSERT INTO cohort_schemas (cohort_id, schema_json) VALUES (?, ?) ON CONFLICT (cohort_id) DO NOTHING',
  // An existing cohort: only what changes after creation. A cancelled cohort stays cancelled.
  // Parameters: patchsets, status, resolved, last activity, seconds saved, outcome, cohort id, status again.
  cohortUpdate: `
    UPDATE cohorts SET patchsets_json = ?, status = ?, resolved_at_ms = ?, last_activity_ms = ?, seconds_saved = ?, outcome_json = ?
    WHERE cohort_id = ? AND (status <> 'cancelled' OR ? = 'cancelled')`,
  // The usual later write of a cohort: only its last activity moved. Setting no indexed column, it
  // touches only the row (setting status and resolved_at_ms, even to the same values, rewrote their
  // two index entries). It matches only when every other column is already as written; when it does
  // not, cohortUpdate runs (with the cancelled guard). Parameters: last activity, cohort id, status,
  // patchsets, resolved, seconds saved, outcome.
  cohortTouch: `
    UPDATE cohorts SET last_activity_ms = ?
    WHERE cohort_id = ? AND status = ? AND patchsets_json = ? AND resolved_at_ms IS ? AND seconds_saved IS ? AND outcome_json IS ?`,
  cohortExists: 'SELECT 1 FROM cohorts WHERE cohort_id = ?',
  // Whether a cohort written as new already has step rows (never, unless its id was reused): then its
  // untouched steps are written as rows, as the upsert always did, instead of being left to derive.
  cohortHasSteps: 'SELECT 1 FROM steps WHERE cohort_id = ? LIMIT 1',
  // A succeeded step is final: its row may be written again (counters) only with the same success (builder,
  // memo, time, duration), so a second success of a step is refused. (That was step_successes' UNIQUE
  // constraint; the table, which nothing read, is no longer written: old rows stay until pruned.)
  stepUpsert: `
    INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                       duration_ms, fail_reason, fail_cause_json, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cohort_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
      failures = excluded.failures, lost_leases = excluded.lost_leases, failed_on_json = excluded.failed_on_json,
      built_by = excluded.built_by, from_memo = excluded.from_memo, duration_ms = excluded.duration_ms,
      fail_reason = excluded.fail_reason, fail_cause_json = excluded.fail_cause_json, fail_peer_id = excluded.fail_peer_id, fail_exit_code = excluded.fail_exit_code,
      fail_log_tail = excluded.fail_log_tail, resolved_at_ms = excluded.resolved_at_ms
    WHERE steps.status <> 'succeeded'
       OR (excluded.status = 'succeeded' AND excluded.built_by IS steps.built_by AND excluded.from_memo = steps.from_memo
           AND excluded.resolved_at_ms IS steps.resolved_at_ms AND excluded.duration_ms IS steps.duration_ms)`,
  // A new cohort's untouched steps, when it already had step rows (cohortHasSteps), in one statement (parameters: cohort id, the step ids as a JSON array):
  // the same rows and guard as stepUpsert once per step, without a statement per step (1,000 for a
  // 1,000-step cohort, one per assignment). In key order, so the rows are appended to the cohort's part
  // of the table instead of inserted among each other ("s1", "s10", "s100", "s2"...: fewer page splits).
  // `WHERE true` lets SQLite parse the upsert after a SELECT.
  pendingStepsInsert: `
    INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                       duration_ms, fail_reason, fail_cause_json, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms)
    SELECT ?, value, 'pending', 0, 0, 0, '[]', NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM json_each(?) WHERE true ORDER BY value
    ON CONFLICT (cohort_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
      failures = excluded.failures, lost_leases = excluded.lost_leases, failed_on_json = excluded.failed_on_json,
      built_by = excluded.built_by, from_memo = excluded.from_memo, duration_ms = excluded.duration_ms,
      fail_reason = excluded.fail_reason, fail_cause_json = excluded.fail_cause_json, fail_peer_id = excluded.fail_peer_id, fail_exit_code = excluded.fail_exit_code,
      fail_log_tail = excluded.fail_log_tail, resolved_at_ms = excluded.resolved_at_ms
    WHERE steps.status <> 'succeeded'`,
  // An ended lease never changes (the same end written again passes).
  leaseUpsert: `
    INSERT INTO leases (cohort_id, lease_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cohort_id, step_id, lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json,
      granted_seq = coalesce(leases.granted_seq, excluded.granted_seq), ended_seq = coalesce(excluded.ended_seq, leases.ended_seq)
    WHERE leases.outcome IS NULL
       OR (excluded.outcome IS leases.outcome AND excluded.end_json IS leases.end_json AND excluded.ended_at_ms IS leases.ended_at_ms)`,
  // A lease's end on its existing row, with the same guard. Parameters: ended, outcome, end JSON, granted seq,
  // ended seq, cohort id, step id, lease id, then outcome, end JSON, ended again.
  leaseEnd: `
    UPDATE leases SET ended_at_ms = ?, outcome = ?, end_json = ?, granted_seq = coalesce(granted_seq, ?), ended_seq = coalesce(?, ended_seq)
    WHERE cohort_id = ? AND step_id = ? AND lease_id = ? AND (outcome IS NULL OR (outcome IS ? AND end_json IS ? AND ended_at_ms IS ?))`,
  peer: `
    INSERT INTO peers (cohort_id, peer_id, token_hash, registration_json, resumable, status, joined_at_ms, grace_ends_at_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cohort_id, peer_id) DO UPDATE SET token_hash = excluded.token_hash, registration_json = excluded.registration_json,
      resumable = excluded.resumable, status = excluded.status, joined_at_ms = excluded.joined_at_ms, grace_ends_at_ms = excluded.grace_ends_at_ms`,
  memo: `
    INSERT INTO memos (memo_key, step_id, cohort_id, peer_id, duration_ms, created_at_ms, expires_at_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (memo_key) DO UPDATE SET step_id = excluded.step_id, cohort_id = excluded.cohort_id, peer_id = excluded.peer_id,
      duration_ms = excluded.duration_ms, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms`,
  memoDelete: 'DELETE FROM memos WHERE memo_key = ?',
  // A duration key is written again with every success of its step (a moving average): update first.
  durationUpdate: 'UPDATE durations SET avg_ms = ?, samples = ? WHERE duration_key = ?',
  durationInsert: 'INSERT INTO durations (duration_key, avg_ms, samples) VALUES (?, ?, ?)',
  event: 'INSERT INTO events (id, cohort_id, at_ms, kind, step_id, peer_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
  // Event ids and the lease rows' event seqs share one sequence (lease-events.ts): a batch takes its numbers up front.
  lastEventId: "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
  setLastEventId: "UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'",
  addLastEventId: "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)",
  claim: 'INSERT INTO store_writer (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch',
  currentEpoch: 'SELECT epoch FROM store_writer WHERE id = 1',
} as const;
