import type Database from 'better-sqlite3';
import { leaseOutcomeOf } from '../core/causes.js';
import type { CacheEvidenceView } from '../core/read-model.js';
import type { Snapshot, Write } from '../core/records.js';
import { StoreConflictError, type SchedulerStore, type StoreConflictKind } from '../core/store-port.js';
import { cacheEvidenceParams, cacheEvidenceSql, sqliteText } from './cache-evidence-rows.js';
import { foldLeasesIntoSteps, leaseSeqs, planEvents, type EventPlan } from './lease-events.js';
import { cohortFromRow, durationFromRow, leaseFromRow, memoFromRow, peerFromRow, schemaJsonOf, stepCauseColumns, stepFromRow } from './row-records.js';

/**
 * The scheduler's side of the SQLite store. Every batch is one transaction,
 * fenced by this instance's writer epoch; guarded rows change only through
 * conditional upserts (`ON CONFLICT ... DO UPDATE ... WHERE`), and one that
 * matches no row throws {@link StoreConflictError}, rolling the batch back.
 */
const bool = (v: boolean): number => (v ? 1 : 0);

const sql = {
  // A new cohort's whole row (as an upsert with the cancelled guard, as on PostgreSQL).
  cohortInsert: `
    INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, schema_json, digest,
                         base_sha, patchsets_json, status, created_at_ms, resolved_at_ms, last_activity_ms, seconds_saved, outcome_json, cohort_key)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cohort_id) DO UPDATE SET patchsets_json = excluded.patchsets_json, status = excluded.status,
      resolved_at_ms = excluded.resolved_at_ms, last_activity_ms = excluded.last_activity_ms, seconds_saved = excluded.seconds_saved,
      outcome_json = excluded.outcome_json
    WHERE cohorts.status <> 'cancelled' OR excluded.status = 'cancelled'`,
  // An existing cohort: only what changes after creation. A cancelled cohort stays cancelled.
  cohortUpdate: `
    UPDATE cohorts SET patchsets_json = ?, status = ?, resolved_at_ms = ?, last_activity_ms = ?, seconds_saved = ?, outcome_json = ?
    WHERE cohort_id = ? AND (status <> 'cancelled' OR ? = 'cancelled')`,
  cohortExists: 'SELECT 1 FROM cohorts WHERE cohort_id = ?',
  // A succeeded step is final: its row may be written again (counters) only with the same success (builder,
  // memo, time, duration), so a second success of a step is refused. (That was step_successes' UNIQUE
  // constraint; the table, which nothing read, is no longer written: old rows stay until pruned.)
  step: `
    INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                       duration_ms, fail_reason, fail_cause_json, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms)
    VALUES (@cohortId, @stepId, @status, @attempts, @failures, @lostLeases, @failedOnJson, @builtBy, @fromMemo,
            @durationMs, @failReason, @failCauseJson, @failPeerId, @failExitCode, @failLogTail, @resolvedAtMs)
    ON CONFLICT (cohort_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
      failures = excluded.failures, lost_leases = excluded.lost_leases, failed_on_json = excluded.failed_on_json,
      built_by = excluded.built_by, from_memo = excluded.from_memo, duration_ms = excluded.duration_ms,
      fail_reason = excluded.fail_reason, fail_cause_json = excluded.fail_cause_json, fail_peer_id = excluded.fail_peer_id, fail_exit_code = excluded.fail_exit_code,
      fail_log_tail = excluded.fail_log_tail, resolved_at_ms = excluded.resolved_at_ms
    WHERE steps.status <> 'succeeded'
       OR (excluded.status = 'succeeded' AND excluded.built_by IS steps.built_by AND excluded.from_memo = steps.from_memo
           AND excluded.resolved_at_ms IS steps.resolved_at_ms AND excluded.duration_ms IS steps.duration_ms)`,
  lease: `
    INSERT INTO leases (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json, granted_seq, ended_seq)
    VALUES (@leaseId, @cohortId, @stepId, @peerId, @attempt, @backup, @startedAtMs, @endedAtMs, @outcome, @endJson, @grantedSeq, @endedSeq)
    ON CONFLICT (lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json,
      granted_seq = coalesce(leases.granted_seq, excluded.granted_seq), ended_seq = coalesce(excluded.ended_seq, leases.ended_seq)
    WHERE leases.outcome IS NULL
       OR (excluded.outcome IS leases.outcome AND excluded.end_json IS leases.end_json AND excluded.ended_at_ms IS leases.ended_at_ms)`,
  peer: `
    INSERT INTO peers (cohort_id, peer_id, token_hash, registration_json, resumable, status, joined_at_ms, grace_ends_at_ms)
    VALUES (@cohortId, @peerId, @tokenHash, @registrationJson, @resumable, @status, @joinedAtMs, @graceEndsAtMs)
    ON CONFLICT (cohort_id, peer_id) DO UPDATE SET token_hash = excluded.token_hash, registration_json = excluded.registration_json,
      resumable = excluded.resumable, status = excluded.status, joined_at_ms = excluded.joined_at_ms, grace_ends_at_ms = excluded.grace_ends_at_ms`,
  memo: `
    INSERT INTO memos (memo_key, step_id, cohort_id, peer_id, duration_ms, created_at_ms, expires_at_ms)
    VALUES (@memoKey, @stepId, @cohortId, @peerId, @durationMs, @createdAtMs, @expiresAtMs)
    ON CONFLICT (memo_key) DO UPDATE SET step_id = excluded.step_id, cohort_id = excluded.cohort_id, peer_id = excluded.peer_id,
      duration_ms = excluded.duration_ms, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms`,
  memoDelete: 'DELETE FROM memos WHERE memo_key = ?',
  duration: `
    INSERT INTO durations (duration_key, avg_ms, samples) VALUES (@durationKey, @avgMs, @samples)
    ON CONFLICT (duration_key) DO UPDATE SET avg_ms = excluded.avg_ms, samples = excluded.samples`,
  event: 'INSERT INTO events (id, cohort_id, at_ms, kind, step_id, peer_id, detail) VALUES (@id, @cohortId, @atMs, @kind, @stepId, @peerId, @detail)',
  // Event ids and the lease rows' event seqs share one sequence (lease-events.ts): a batch takes its numbers up front.
  lastEventId: "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
  setLastEventId: "UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'",
  addLastEventId: "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)",
  claim: 'INSERT INTO store_writer (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch',
  currentEpoch: 'SELECT epoch FROM store_writer WHERE id = 1',
} as const;

/**
 * Lets a background checkpoint finish without a commit landing in its middle
 * (sqlite-checkpointer.ts), so the WAL can be rewound. Never a lock the event
 * loop waits on: while a checkpoint holds it, a batch is committed later.
 */
export interface CommitGate {
  /** Takes the gate for one commit; false while a checkpoint holds it. */
  enter(): boolean;
  leave(): void;
  /** Resolves once the checkpoint holding the gate has let go. */
  free(): Promise<void>;
}

export class SqliteSchedulerStore implements SchedulerStore {
  private readonly stmt: { [K in keyof typeof sql]: Database.Statement };
  private readonly applyBatch: (writes: readonly Write[]) => void;
  /** The epoch this instance claimed on its first load or apply; null before. */
  private epoch: number | null = null;
  private readonly recordEvidence: Database.Statement;

  /**
   * `beforeCommit` runs before every batch and throws to refuse it (the file
   * guard); with a `gate`, a batch that finds a checkpoint finishing commits
   * when it is done (`apply` then returns a promise).
   */
  constructor(
    private readonly db: Database.Database,
    private readonly beforeCommit: () => void = () => undefined,
    private readonly gate: CommitGate | null = null,
  ) {
    this.recordEvidence = db.prepare(sqliteText(cacheEvidenceSql.upsert));
    this.stmt = Object.fromEntries(Object.entries(sql).map(([k, text]) => [k, db.prepare(text)])) as { [K in keyof typeof sql]: Database.Statement };
    // BEGIN IMMEDIATE: the batch holds the write lock from its first statement, so reading the
    // epoch is enough to fence it (no other writer can claim one until it commits); an UPDATE
    // here rewrote the store_writer page, one more WAL page in every commit.
    this.applyBatch = db.transaction((writes: readonly Write[]) => {
      this.fence();
      const plan = planEvents(writes);
      const base = plan.slots === 0 ? 0 : ((this.stmt.lastEventId.get() as { seq: number } | undefined)?.seq ?? 0);
      for (const w of writes) this.applyOne(w, plan, base);
      // The batch ended with folded events: their numbers are taken too, so later ids stay above them.
      if (plan.slots > 0 && plan.lastRowSlot < plan.slots - 1) {
        const last = base + plan.slots;
        if (this.stmt.setLastEventId.run(last).changes === 0) this.stmt.addLastEventId.run(last);
      }
    }).immediate;
  }

  /** The writer epoch this instance holds (claiming one if it has none yet). */
  claim(): number {
    this.epoch ??= (this.stmt.claim.get() as { epoch: number }).epoch;
    return this.epoch;
  }

  apply(writes: readonly Write[]): void | Promise<void> {
    this.claim();
    if (writes.length === 0) return;
    if (this.gate !== null && !this.gate.enter()) return this.gate.free().then(() => this.apply(writes));
    try {
      this.beforeCommit();
      this.applyBatch(writes);
    } finally {
      this.gate?.leave();
    }
  }

  recordCacheEvidence(cohortId: string, evidence: CacheEvidenceView): void {
    this.beforeCommit();
    this.recordEvidence.run(...cacheEvidenceParams(cohortId, evidence));
  }

  load(nowMs: number, retentionMs: number): Snapshot {
    this.claim();
    const keep = `SELECT cohort_id FROM cohorts WHERE status = 'open' OR resolved_at_ms >= @since`;
    const since = { since: nowMs - retentionMs };
    const all = (text: string, params: unknown): unknown[] => this.db.prepare(text).all(params);
    return this.db.transaction(() => foldLeasesIntoSteps({
      cohorts: all(`SELECT * FROM cohorts WHERE cohort_id IN (${keep}) ORDER BY created_at_ms, cohort_id`, since).map(cohortFromRow),
      steps: all(`SELECT * FROM steps WHERE cohort_id IN (${keep})`, since).map(stepFromRow),
      leases: all(`SELECT * FROM leases WHERE cohort_id IN (${keep}) ORDER BY started_at_ms, lease_id`, since).map(leaseFromRow),
      peers: all(`SELECT * FROM peers WHERE cohort_id IN (${keep}) ORDER BY joined_at_ms`, since).map(peerFromRow),
      memos: all('SELECT * FROM memos WHERE expires_at_ms > @now', { now: nowMs }).map(memoFromRow),
      durations: all('SELECT * FROM durations', {}).map(durationFromRow),
    }))();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private fence(): void {
    const current = this.stmt.currentEpoch.get() as { epoch: number } | undefined;
    if (current?.epoch === this.epoch) return;
    throw new StoreConflictError('writer-deposed', 'store_writer', `this store writes as epoch ${this.epoch}, but another writer claimed epoch ${current?.epoch ?? '?'} since`);
  }

  /** Runs a conditional upsert; no row changed means the guard refused the write. */
  private guarded(stmt: Database.Statement, params: Record<string, unknown>, kind: StoreConflictKind, row: string, detail: string): void {
    if (stmt.run(params).changes === 0) throw new StoreConflictError(kind, row, detail);
  }

  private applyOne(w: Write, plan: EventPlan, base: number): void {
    switch (w.table) {
      case 'cohort': {
        const r = w.row;
        const patchsetsJson = JSON.stringify(r.patchsets);
        const outcomeJson = r.outcome === null ? null : JSON.stringify(r.outcome);
        const changed = w.created === true
          ? this.stmt.cohortInsert.run(
              r.cohortId, r.repo, r.baseRef, r.cacheId, r.pipelineType, bool(r.isolated), r.schema.id, schemaJsonOf(r.schema), r.digest,
              r.baseSha, patchsetsJson, r.status, r.createdAtMs, r.resolvedAtMs, r.lastActivityMs, r.secondsSaved, outcomeJson, r.cohortKey,
            ).changes
          : this.stmt.cohortUpdate.run(patchsetsJson, r.status, r.resolvedAtMs, r.lastActivityMs, r.secondsSaved, outcomeJson, r.cohortId, r.status).changes;
        if (changed === 1) return;
        if (w.created !== true && this.stmt.cohortExists.get(r.cohortId) === undefined) {
          throw new Error(`cohorts[${r.cohortId}]: written as an existing cohort, but the store has no such row; the whole batch was rolled back`);
        }
        throw new StoreConflictError('cohort-cancelled', `cohorts[${r.cohortId}]`, `the cohort is cancelled; refusing to make it ${r.status}`);
      }
      case 'step': {
        const r = w.row;
        const params = {
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
          failReason: stepCauseColumns(r).reason,
          failCauseJson: stepCauseColumns(r).causeJson,
          failPeerId: r.failPeerId,
          failExitCode: r.failExitCode,
          failLogTail: r.failLogTail,
          resolvedAtMs: r.resolvedAtMs,
        };
        const detail = `the step already succeeded; refusing to make it ${r.status}${r.status === 'succeeded' ? ` (built by ${r.builtBy ?? 'a memo'})` : ''}`;
        this.guarded(this.stmt.step, params, 'step-succeeded', `steps[${r.cohortId}/${r.stepId}]`, detail);
        return;
      }
      case 'lease': {
        const r = w.row;
        const outcome = r.end === null ? null : leaseOutcomeOf(r.end);
        const params = {
          leaseId: r.leaseId,
          cohortId: r.cohortId,
          stepId: r.stepId,
          peerId: r.peerId,
          attempt: r.attempt,
          backup: bool(r.backup),
          startedAtMs: r.startedAtMs,
          endedAtMs: r.endedAtMs,
          outcome,
          endJson: r.end === null ? null : JSON.stringify(r.end),
          ...leaseSeqs(plan, base, r.leaseId),
        };
        const detail = `the lease already ended; refusing to ${outcome === null ? 'make it live again' : `end it again as ${outcome}`}`;
        this.guarded(this.stmt.lease, params, 'lease-ended', `leases[${r.leaseId}]`, detail);
        return;
      }
      case 'peer': {
        const r = w.row;
        this.stmt.peer.run({
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
        this.stmt.memo.run({ ...w.row });
        return;
      case 'memo.delete':
        this.stmt.memoDelete.run(w.memoKey);
        return;
      case 'duration':
        this.stmt.duration.run({ ...w.row });
        return;
      case 'event': {
        const slot = plan.rowSlots.get(w);
        if (slot === undefined) return; // folded into its lease's row
        const r = w.row;
        this.stmt.event.run({ id: base + slot + 1, cohortId: r.cohortId, atMs: r.atMs, kind: r.kind, stepId: r.stepId, peerId: r.peerId, detail: r.detail });
        return;
      }
    }
  }
}
