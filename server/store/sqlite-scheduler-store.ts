import type Database from 'better-sqlite3';
import { leaseOutcomeOf } from '../core/causes.js';
import type { CacheEvidenceView } from '../core/read-model.js';
import type { CohortRecord, LeaseRecord, Snapshot, StepRecord, Write } from '../core/records.js';
import { StoreConflictError, type SchedulerStore } from '../core/store-port.js';
import { cacheEvidenceParams, cacheEvidenceSql, sqliteText } from './cache-evidence-rows.js';
import { foldLeasesIntoSteps, planEvents, withUnwrittenSteps, type EventPlan } from './lease-events.js';
import { cohortFromRow, durationFromRow, leaseFromRow, memoFromRow, peerFromRow, schemaJsonOf, stepCauseColumns, stepFromRow } from './row-records.js';
import { sqliteWriteSql } from './sqlite-write-sql.js';
import { supersededDurations } from './superseded-writes.js';
import { cohortConflict, leaseConflict, missingCohortError, stepConflict } from './write-conflicts.js';

/**
 * The scheduler's side of the SQLite store. Every batch is one transaction,
 * fenced by this instance's writer epoch; guarded rows change only through
 * conditional writes (an `UPDATE ... WHERE` guard, or an upsert's
 * `ON CONFLICT ... DO UPDATE ... WHERE`; sqlite-write-sql.ts), and one that
 * changes no row throws {@link StoreConflictError}, rolling the batch back.
 */
const bool = (v: boolean): number => (v ? 1 : 0);

/** A step as a new cohort starts it (records.ts `pendingStepRecord`): pending, never leased, no outcome. */
function isUntouched(r: StepRecord): boolean {
  return r.status === 'pending' && r.attempts === 0 && r.failures === 0 && r.lostLeases === 0 && r.failedOn.length === 0 && r.builtBy === null && !r.fromMemo &&
    r.durationMs === null && r.failCause === null && (r.unsharedCause ?? null) === null && r.failPeerId === null && r.failExitCode === null &&
    r.failLogTail === null && r.resolvedAtMs === null;
}

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
  private readonly stmt: { [K in keyof typeof sqliteWriteSql]: Database.Statement };
  private readonly applyBatch: (writes: readonly Write[]) => void;
  /** The epoch this instance claimed on its first load or apply; null before. */
  private epoch: number | null = null;
  private readonly recordEvidence: Database.Statement;
  /**
   * The events sequence's last number as this instance last committed it (lease-events.ts: event ids
   * and lease event seqs share it); null until read, and after a batch that failed.
   */
  private lastEventSeq: number | null = null;
  /** What {@link lastEventSeq} becomes if the batch being applied commits. */
  private batchLastEventSeq: number | null = null;
  /** Untouched steps of a new cohort not yet inserted (flushPending), and their cohort. */
  private pendingSteps: StepRecord[] = [];
  private pendingCohort: string | null = null;

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
    this.stmt = Object.fromEntries(Object.entries(sqliteWriteSql).map(([k, text]) => [k, db.prepare(text)])) as { [K in keyof typeof sqliteWriteSql]: Database.Statement };
    // BEGIN IMMEDIATE: the batch holds the write lock from its first statement, so reading the
    // epoch is enough to fence it (no other writer can claim one until it commits); an UPDATE
    // here rewrote the store_writer page, one more WAL page in every commit.
    this.applyBatch = db.transaction((writes: readonly Write[]) => {
      this.fence();
      const plan = planEvents(writes);
      // The sequence's last number is read once, then kept: only this writer takes numbers while its epoch holds (the fence).
      const base = plan.slots === 0 ? 0 : (this.lastEventSeq ?? (this.stmt.lastEventId.get() as { seq: number } | undefined)?.seq ?? 0);
      this.batchLastEventSeq = plan.slots === 0 ? this.lastEventSeq : base + plan.slots;
      // Cohorts created in this batch, and whether each had step rows before it (cohortHasSteps).
      const created = new Map<string, boolean>();
      const superseded = supersededDurations(writes);
      this.pendingSteps = [];
      this.pendingCohort = null;
      for (const w of writes) {
        // A new cohort's untouched steps get no row: load and the read model derive them from its schema
        // (migration 9). Only a cohort that already had step rows (a reused id) has them written, as the
        // upsert always did: gathered and inserted in one statement (pendingStepsInsert) before any other
        // write, so a later write of one of them in this batch finds its row.
        if (w.table === 'step' && isUntouched(w.row)) {
          const hadRows = created.get(w.row.cohortId);
          if (hadRows === false) continue;
          if (hadRows === true) {
            this.gatherPending(w.row);
            continue;
          }
        }
        if (superseded?.has(w) === true) continue;
        this.flushPending();
        this.applyOne(w, plan, base, created);
      }
      this.flushPending();
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
      this.lastEventSeq = this.batchLastEventSeq;
    } catch (err) {
      // Rolled back (or not begun): the numbers it took were not kept; read the sequence again.
      this.lastEventSeq = null;
      throw err;
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
    return this.db.transaction(() => foldLeasesIntoSteps(withUnwrittenSteps({
      cohorts: all(`SELECT c.*, s.schema_json FROM cohorts c JOIN cohort_schemas s USING (cohort_id) WHERE c.cohort_id IN (${keep}) ORDER BY c.created_at_ms, c.cohort_id`, since).map(cohortFromRow),
      steps: all(`SELECT * FROM steps WHERE cohort_id IN (${keep})`, since).map(stepFromRow),
      leases: all(`SELECT * FROM leases WHERE cohort_id IN (${keep}) ORDER BY started_at_ms, lease_id`, since).map(leaseFromRow),
      peers: all(`SELECT * FROM peers WHERE cohort_id IN (${keep}) ORDER BY joined_at_ms`, since).map(peerFromRow),
      memos: all('SELECT * FROM memos WHERE expires_at_ms > @now', { now: nowMs }).map(memoFromRow),
      durations: all('SELECT * FROM durations', {}).map(durationFromRow),
    })))();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Gathers an untouched step of a new cohort for {@link flushPending}. */
  private gatherPending(r: StepRecord): void {
    if (this.pendingCohort !== r.cohortId) {
      this.flushPending();
      this.pendingCohort = r.cohortId;
    }
    this.pendingSteps.push(r);
  }

  /** Inserts the gathered untouched steps of one new cohort in one statement. */
  private flushPending(): void {
    const cohortId = this.pendingCohort;
    if (cohortId === null) return;
    const rows = this.pendingSteps;
    this.pendingCohort = null;
    this.pendingSteps = [];
    const changed = this.stmt.pendingStepsInsert.run(cohortId, JSON.stringify(rows.map((r) => r.stepId))).changes;
    if (changed === rows.length) return;
    // A guard refused one (a step that had succeeded): each again, so the refusal names its step.
    for (const r of rows) this.writeStep(r);
    throw new Error(`store: ${rows.length - changed} of ${rows.length} new step rows of cohort ${cohortId} were refused, but none when written one by one`);
  }

  private fence(): void {
    const current = this.stmt.currentEpoch.get() as { epoch: number } | undefined;
    if (current?.epoch === this.epoch) return;
    throw new StoreConflictError('writer-deposed', 'store_writer', `this store writes as epoch ${this.epoch}, but another writer claimed epoch ${current?.epoch ?? '?'} since`);
  }

  private applyOne(w: Write, plan: EventPlan, base: number, created: Map<string, boolean>): void {
    switch (w.table) {
      case 'cohort':
        return this.writeCohort(w.row, w.created === true, created);
      case 'step':
        return this.writeStep(w.row);
      case 'lease':
        return this.writeLease(w.row, plan, base);
      case 'peer': {
        const r = w.row;
        this.stmt.peer.run(r.cohortId, r.peerId, r.tokenHash, JSON.stringify(r.registration), bool(r.resumable), r.status, r.joinedAtMs, r.graceEndsAtMs);
        return;
      }
      case 'memo': {
        const r = w.row;
        this.stmt.memo.run(r.memoKey, r.stepId, r.cohortId, r.peerId, r.durationMs, r.createdAtMs, r.expiresAtMs);
        return;
      }
      case 'memo.delete':
        this.stmt.memoDelete.run(w.memoKey);
        return;
      case 'duration': {
        const r = w.row;
        if (this.stmt.durationUpdate.run(r.avgMs, r.samples, r.durationKey).changes === 0) this.stmt.durationInsert.run(r.durationKey, r.avgMs, r.samples);
        return;
      }
      case 'event': {
        const slot = plan.rowSlots.get(w);
        if (slot === undefined) return; // folded into its lease's row
        const r = w.row;
        this.stmt.event.run(base + slot + 1, r.cohortId, r.atMs, r.kind, r.stepId, r.peerId, r.detail);
        return;
      }
    }
  }

  /** A new cohort's whole row, or an existing one's changing columns (records.ts, the cohort write's `created`). */
  private writeCohort(r: CohortRecord, isNew: boolean, created: Map<string, boolean>): void {
    const patchsetsJson = JSON.stringify(r.patchsets);
    const outcomeJson = r.outcome === null ? null : JSON.stringify(r.outcome);
    if (isNew) {
      created.set(r.cohortId, this.stmt.cohortHasSteps.get(r.cohortId) !== undefined);
      const changed = this.stmt.cohortInsert.run(
        r.cohortId, r.repo, r.baseRef, r.cacheId, r.pipelineType, bool(r.isolated), r.schema.id, r.digest,
        r.baseSha, patchsetsJson, r.status, r.createdAtMs, r.resolvedAtMs, r.lastActivityMs, r.secondsSaved, outcomeJson, r.cohortKey, r.schema.steps.length,
      ).changes;
      if (changed === 0) throw cohortConflict(r);
      this.stmt.cohortSchemaInsert.run(r.cohortId, schemaJsonOf(r.schema));
      return;
    }
    if (this.stmt.cohortTouch.run(r.lastActivityMs, r.cohortId, r.status, patchsetsJson, r.resolvedAtMs, r.secondsSaved, outcomeJson).changes === 1) return;
    if (this.stmt.cohortUpdate.run(patchsetsJson, r.status, r.resolvedAtMs, r.lastActivityMs, r.secondsSaved, outcomeJson, r.cohortId, r.status).changes === 1) return;
    if (this.stmt.cohortExists.get(r.cohortId) === undefined) throw missingCohortError(r.cohortId);
    throw cohortConflict(r);
  }

  /**
   * A step row, by the upsert under the succeeded guard: its first write inserts it (a new cohort's
   * steps have no row until they change), a later one updates it or is refused.
   */
  private writeStep(r: StepRecord): void {
    const cause = stepCauseColumns(r);
    const changed = this.stmt.stepUpsert.run(
      r.cohortId, r.stepId, r.status, r.attempts, r.failures, r.lostLeases, r.failedOn.length === 0 ? '[]' : JSON.stringify(r.failedOn), r.builtBy, bool(r.fromMemo),
      r.durationMs, cause.reason, cause.causeJson, r.failPeerId, r.failExitCode, r.failLogTail, r.resolvedAtMs,
    ).changes;
    if (changed === 0) throw stepConflict(r);
  }

  /**
   * A lease row: a live one (a grant) is inserted; an ended one updates its row under the ended
   * guard, falling back to the upsert when no row matched (a lease granted and ended in one input
   * has no row yet). Its folded events' numbers go on it (lease-events.ts).
   */
  private writeLease(r: LeaseRecord, plan: EventPlan, base: number): void {
    const outcome = r.end === null ? null : leaseOutcomeOf(r.end);
    const endJson = r.end === null ? null : JSON.stringify(r.end);
    const slots = plan.leaseSlots.get(r.leaseId);
    const grantedSeq = slots === undefined || slots.granted === null ? null : base + slots.granted + 1;
    const endedSeq = slots === undefined || slots.ended === null ? null : base + slots.ended + 1;
    if (outcome !== null && this.stmt.leaseEnd.run(r.endedAtMs, outcome, endJson, grantedSeq, endedSeq, r.cohortId, r.stepId, r.leaseId, outcome, endJson, r.endedAtMs).changes === 1) return;
    const changed = this.stmt.leaseUpsert.run(
      r.cohortId, r.leaseId, r.stepId, r.peerId, r.attempt, bool(r.backup), r.startedAtMs, r.endedAtMs, outcome, endJson, grantedSeq, endedSeq,
    ).changes;
    if (changed === 0) throw leaseConflict(r);
  }
}
