import Database from 'better-sqlite3';
import type { CohortRecord, DurationRecord, LeaseRecord, MemoRecord, PeerRecord, Snapshot, StepRecord, Write } from '../core/records.js';
import { describeStepFailure, leaseOutcomeOf } from '../core/causes.js';
import type { SchedulerStore } from '../core/store-port.js';
import { migrations } from './migrations.js';
import { parseJsonColumn, storedCohortOutcome, storedLeaseEnd, storedRegistration, storedSchemaDef, storedStepFailCause, storedStringList } from './row-schemas.js';

/**
 * The embedded store: better-sqlite3 in WAL mode. Every batch of writes is one
 * transaction; the transport sends no frame about a transition before its
 * batch has committed.
 */
export interface SqliteStoreOptions {
  /** `full` survives power loss; `normal` (default) survives a crash of the process. */
  readonly synchronous?: 'normal' | 'full';
}

type Row = Record<string, unknown>;

const bool = (v: boolean): number => (v ? 1 : 0);

export class SqliteStore implements SchedulerStore {
  readonly db: Database.Database;
  private readonly applyBatch: (writes: readonly Write[]) => void;
  private readonly stmt: Record<string, Database.Statement>;

  constructor(readonly path: string, options: SqliteStoreOptions = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.stmt = {
      cohort: this.db.prepare(`
        INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, schema_json, digest,
                             base_sha, patchsets_json, status, created_at_ms, resolved_at_ms, last_activity_ms, seconds_saved, outcome_json)
        VALUES (@cohortId, @repo, @baseRef, @cacheId, @pipelineType, @isolated, @schemaId, @schemaJson, @digest,
                @baseSha, @patchsetsJson, @status, @createdAtMs, @resolvedAtMs, @lastActivityMs, @secondsSaved, @outcomeJson)
        ON CONFLICT (cohort_id) DO UPDATE SET patchsets_json = excluded.patchsets_json, status = excluded.status,
          resolved_at_ms = excluded.resolved_at_ms, last_activity_ms = excluded.last_activity_ms, seconds_saved = excluded.seconds_saved,
          outcome_json = excluded.outcome_json`),
      step: this.db.prepare(`
        INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                           duration_ms, fail_reason, fail_cause_json, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms)
        VALUES (@cohortId, @stepId, @status, @attempts, @failures, @lostLeases, @failedOnJson, @builtBy, @fromMemo,
                @durationMs, @failReason, @failCauseJson, @failPeerId, @failExitCode, @failLogTail, @resolvedAtMs)
        ON CONFLICT (cohort_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
          failures = excluded.failures, lost_leases = excluded.lost_leases, failed_on_json = excluded.failed_on_json,
          built_by = excluded.built_by, from_memo = excluded.from_memo, duration_ms = excluded.duration_ms,
          fail_reason = excluded.fail_reason, fail_cause_json = excluded.fail_cause_json, fail_peer_id = excluded.fail_peer_id, fail_exit_code = excluded.fail_exit_code,
          fail_log_tail = excluded.fail_log_tail, resolved_at_ms = excluded.resolved_at_ms`),
      success: this.db.prepare(`
        INSERT INTO step_successes (cohort_id, step_id, lease_id, peer_id, at_ms) VALUES (@cohortId, @stepId, @leaseId, @peerId, @atMs)`),
      lease: this.db.prepare(`
        INSERT INTO leases (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json)
        VALUES (@leaseId, @cohortId, @stepId, @peerId, @attempt, @backup, @startedAtMs, @endedAtMs, @outcome, @endJson)
        ON CONFLICT (lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json`),
      peer: this.db.prepare(`
        INSERT INTO peers (cohort_id, peer_id, token_hash, registration_json, resumable, status, joined_at_ms, grace_ends_at_ms)
        VALUES (@cohortId, @peerId, @tokenHash, @registrationJson, @resumable, @status, @joinedAtMs, @graceEndsAtMs)
        ON CONFLICT (cohort_id, peer_id) DO UPDATE SET token_hash = excluded.token_hash, registration_json = excluded.registration_json,
          resumable = excluded.resumable, status = excluded.status, joined_at_ms = excluded.joined_at_ms, grace_ends_at_ms = excluded.grace_ends_at_ms`),
      memo: this.db.prepare(`
        INSERT INTO memos (memo_key, step_id, cohort_id, peer_id, duration_ms, created_at_ms, expires_at_ms)
        VALUES (@memoKey, @stepId, @cohortId, @peerId, @durationMs, @createdAtMs, @expiresAtMs)
        ON CONFLICT (memo_key) DO UPDATE SET step_id = excluded.step_id, cohort_id = excluded.cohort_id, peer_id = excluded.peer_id,
          duration_ms = excluded.duration_ms, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms`),
      memoDelete: this.db.prepare('DELETE FROM memos WHERE memo_key = ?'),
      duration: this.db.prepare(`
        INSERT INTO durations (duration_key, avg_ms, samples) VALUES (@durationKey, @avgMs, @samples)
        ON CONFLICT (duration_key) DO UPDATE SET avg_ms = excluded.avg_ms, samples = excluded.samples`),
      event: this.db.prepare(`
        INSERT INTO events (cohort_id, at_ms, kind, step_id, peer_id, detail) VALUES (@cohortId, @atMs, @kind, @stepId, @peerId, @detail)`),
    };
    this.applyBatch = this.db.transaction((writes: readonly Write[]) => {
      for (const w of writes) this.applyOne(w);
    });
  }

  apply(writes: readonly Write[]): void {
    if (writes.length > 0) this.applyBatch(writes);
  }

  private applyOne(w: Write): void {
    switch (w.table) {
      case 'cohort': {
        const r = w.row;
        this.stmt.cohort!.run({
          cohortId: r.cohortId,
          repo: r.repo,
          baseRef: r.baseRef,
          cacheId: r.cacheId,
          pipelineType: r.pipelineType,
          isolated: bool(r.isolated),
          schemaId: r.schema.id,
          schemaJson: JSON.stringify(r.schema),
          digest: r.digest,
          baseSha: r.baseSha,
          patchsetsJson: JSON.stringify(r.patchsets),
          status: r.status,
          createdAtMs: r.createdAtMs,
          resolvedAtMs: r.resolvedAtMs,
          lastActivityMs: r.lastActivityMs,
          secondsSaved: r.secondsSaved,
          outcomeJson: r.outcome === null ? null : JSON.stringify(r.outcome),
        });
        return;
      }
      case 'step': {
        const r = w.row;
        this.stmt.step!.run({
          cohortId: r.cohortId,
          stepId: r.stepId,
          status: r.status,
          attempts: r.attempts,
          failures: r.failures,
          lostLeases: r.lostLeases,
          failedOnJson: JSON.stringify(r.failedOn),
          builtBy: r.builtBy,
          fromMemo: bool(r.fromMemo),
          durationMs: r.durationMs,
          failReason: r.failCause === null ? null : describeStepFailure(r.failCause),
          failCauseJson: r.failCause === null ? null : JSON.stringify(r.failCause),
          failPeerId: r.failPeerId,
          failExitCode: r.failExitCode,
          failLogTail: r.failLogTail,
          resolvedAtMs: r.resolvedAtMs,
        });
        return;
      }
      case 'success':
        this.stmt.success!.run({ cohortId: w.cohortId, stepId: w.stepId, leaseId: w.leaseId, peerId: w.peerId, atMs: w.atMs });
        return;
      case 'lease':
        this.stmt.lease!.run({
          leaseId: w.row.leaseId,
          cohortId: w.row.cohortId,
          stepId: w.row.stepId,
          peerId: w.row.peerId,
          attempt: w.row.attempt,
          backup: bool(w.row.backup),
          startedAtMs: w.row.startedAtMs,
          endedAtMs: w.row.endedAtMs,
          outcome: w.row.end === null ? null : leaseOutcomeOf(w.row.end),
          endJson: w.row.end === null ? null : JSON.stringify(w.row.end),
        });
        return;
      case 'peer': {
        const r = w.row;
        this.stmt.peer!.run({
          cohortId: r.cohortId,
          peerId: r.peerId,
          tokenHash: r.tokenHash,
          registrationJson: JSON.stringify(r.registration),
          resumable: bool(r.resumable),
          status: r.status,
          joinedAtMs: r.joinedAtMs,
          graceEndsAtMs: r.graceEndsAtMs,
        });
        return;
      }
      case 'memo':
        this.stmt.memo!.run({ ...w.row });
        return;
      case 'memo.delete':
        this.stmt.memoDelete!.run(w.memoKey);
        return;
      case 'duration':
        this.stmt.duration!.run({ ...w.row });
        return;
      case 'event':
        this.stmt.event!.run({ ...w.row });
        return;
    }
  }

  load(nowMs: number, retentionMs: number): Snapshot {
    const keep = `SELECT cohort_id FROM cohorts WHERE status = 'open' OR resolved_at_ms >= @since`;
    const since = { since: nowMs - retentionMs };
    const cohorts = (this.db.prepare(`SELECT * FROM cohorts WHERE cohort_id IN (${keep}) ORDER BY created_at_ms, cohort_id`).all(since) as Row[]).map(cohortFromRow);
    const steps = (this.db.prepare(`SELECT * FROM steps WHERE cohort_id IN (${keep})`).all(since) as Row[]).map(stepFromRow);
    const leases = (this.db.prepare(`SELECT * FROM leases WHERE cohort_id IN (${keep}) ORDER BY started_at_ms, lease_id`).all(since) as Row[]).map(leaseFromRow);
    const peers = (this.db.prepare(`SELECT * FROM peers WHERE cohort_id IN (${keep}) ORDER BY joined_at_ms`).all(since) as Row[]).map(peerFromRow);
    const memos = (this.db.prepare('SELECT * FROM memos WHERE expires_at_ms > ?').all(nowMs) as Row[]).map(memoFromRow);
    const durations = (this.db.prepare('SELECT * FROM durations').all() as Row[]).map(
      (r): DurationRecord => ({ durationKey: String(r.duration_key), avgMs: Number(r.avg_ms), samples: Number(r.samples) }),
    );
    return { cohorts, steps, leases, peers, memos, durations };
  }

  /** `PRAGMA integrity_check`: "ok" when the file is sound. */
  integrityCheck(): string {
    return (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT');
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  const newest = Math.max(0, ...applied);
  const known = Math.max(...migrations.map((m) => m.version));
  if (newest > known) throw new Error(`database schema version ${newest} is newer than this taskshard knows (${known}); upgrade taskshard`);
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      // The applied-at time is bookkeeping only; the scheduler never reads it.
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    })();
  }
}

const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const nullableString = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function cohortFromRow(r: Row): CohortRecord {
  const where = `cohorts[${String(r.cohort_id)}]`;
  return {
    cohortId: String(r.cohort_id),
    repo: String(r.repo),
    baseRef: String(r.base_ref),
    cacheId: String(r.cache_id),
    pipelineType: r.pipeline_type === 'dependent' ? 'dependent' : 'independent',
    isolated: r.isolated === 1,
    schema: parseJsonColumn(storedSchemaDef, String(r.schema_json), `${where}.schema_json`),
    digest: String(r.digest),
    baseSha: nullableString(r.base_sha),
    patchsets: parseJsonColumn(storedStringList, String(r.patchsets_json), `${where}.patchsets_json`),
    status: r.status as CohortRecord['status'],
    createdAtMs: Number(r.created_at_ms),
    resolvedAtMs: nullableNumber(r.resolved_at_ms),
    lastActivityMs: Number(r.last_activity_ms),
    secondsSaved: nullableNumber(r.seconds_saved),
    outcome: r.outcome_json === null || r.outcome_json === undefined ? null : parseJsonColumn(storedCohortOutcome, String(r.outcome_json), `${where}.outcome_json`),
  };
}

function stepFromRow(r: Row): StepRecord {
  return {
    cohortId: String(r.cohort_id),
    stepId: String(r.step_id),
    status: r.status as StepRecord['status'],
    attempts: Number(r.attempts),
    failures: Number(r.failures),
    lostLeases: Number(r.lost_leases),
    failedOn: parseJsonColumn(storedStringList, String(r.failed_on_json), `steps[${String(r.cohort_id)}/${String(r.step_id)}].failed_on_json`),
    builtBy: nullableString(r.built_by),
    fromMemo: r.from_memo === 1,
    durationMs: nullableNumber(r.duration_ms),
    failCause:
      r.fail_cause_json === null || r.fail_cause_json === undefined
        ? null
        : parseJsonColumn(storedStepFailCause, String(r.fail_cause_json), `steps[${String(r.cohort_id)}/${String(r.step_id)}].fail_cause_json`),
    failPeerId: nullableString(r.fail_peer_id),
    failExitCode: nullableNumber(r.fail_exit_code),
    failLogTail: nullableString(r.fail_log_tail),
    resolvedAtMs: nullableNumber(r.resolved_at_ms),
  };
}

function leaseFromRow(r: Row): LeaseRecord {
  return {
    leaseId: String(r.lease_id),
    cohortId: String(r.cohort_id),
    stepId: String(r.step_id),
    peerId: String(r.peer_id),
    attempt: Number(r.attempt),
    backup: r.backup === 1,
    startedAtMs: Number(r.started_at_ms),
    endedAtMs: nullableNumber(r.ended_at_ms),
    end: r.end_json === null || r.end_json === undefined ? null : parseJsonColumn(storedLeaseEnd, String(r.end_json), `leases[${String(r.lease_id)}].end_json`),
  };
}

function peerFromRow(r: Row): PeerRecord {
  return {
    peerId: String(r.peer_id),
    cohortId: String(r.cohort_id),
    tokenHash: String(r.token_hash),
    registration: parseJsonColumn(storedRegistration, String(r.registration_json), `peers[${String(r.cohort_id)}/${String(r.peer_id)}].registration_json`),
    resumable: r.resumable === 1,
    status: r.status as PeerRecord['status'],
    joinedAtMs: Number(r.joined_at_ms),
    graceEndsAtMs: nullableNumber(r.grace_ends_at_ms),
  };
}

function memoFromRow(r: Row): MemoRecord {
  return {
    memoKey: String(r.memo_key),
    stepId: String(r.step_id),
    cohortId: String(r.cohort_id),
    peerId: nullableString(r.peer_id),
    durationMs: nullableNumber(r.duration_ms),
    createdAtMs: Number(r.created_at_ms),
    expiresAtMs: Number(r.expires_at_ms),
  };
}
