import type postgres from 'postgres';
import { leaseOutcomeOf } from '../../core/causes.js';
import type { CacheEvidenceView } from '../../core/read-model.js';
import type { Snapshot, Write } from '../../core/records.js';
import { StoreConflictError, type SchedulerStore } from '../../core/store-port.js';
import { cacheEvidenceParams, cacheEvidenceSql } from '../cache-evidence-rows.js';
import { foldLeasesIntoSteps, planEvents, type EventPlan } from '../lease-events.js';
import { supersededDurations } from '../superseded-writes.js';
import { cohortFromRow, durationFromRow, leaseFromRow, memoFromRow, peerFromRow, schemaJsonOf, stepCauseColumns, stepFromRow } from '../row-records.js';
import { cohortConflict, leaseConflict, missingCohortError, stepConflict } from '../write-conflicts.js';
import type { Sql } from './pg-connection.js';

/**
 * The scheduler's side of the PostgreSQL store. A batch is one statement, one
 * round trip: `taskshard_apply` (migration 3) checks the writer fence and runs
 * every write in order, in one transaction. Guarded rows change through
 * conditional upserts (`ON CONFLICT ... DO UPDATE ... WHERE`); one that
 * changed no row means the guard refused it, and the whole batch rolls back
 * with a {@link StoreConflictError}. With a leader term (server/ha), the
 * fence also checks that the term is still the lease row's, in the same
 * statement, so a deposed authority cannot commit.
 */
const bool = (v: boolean): number => (v ? 1 : 0);

const text = {
  apply: 'SELECT taskshard_apply($1::boolean, $2::bigint, $3::bigint, $4::text, $5::jsonb, $6::integer) AS epoch',
  claim: 'INSERT INTO store_writer (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET epoch = store_writer.epoch + 1 RETURNING epoch',
  fence: 'UPDATE store_writer SET epoch = epoch WHERE id = 1 AND epoch = $1',
  fenceWithTerm: `UPDATE store_writer SET epoch = epoch WHERE id = 1 AND epoch = $1
                  AND EXISTS (SELECT 1 FROM leader_lease WHERE id = 1 AND term = $2 AND holder = $3)`,
  current: `SELECT (SELECT epoch FROM store_writer WHERE id = 1) AS epoch, l.term, l.holder FROM leader_lease l WHERE l.id = 1`,
} as const;

type Param = string | number | null;

/** One write of a batch as taskshard_apply reads it: table, columns. */
interface Planned {
  readonly t: Write['table'] | 'cohort.update';
  readonly r: Record<string, Param>;
}

/** A PostgreSQL error's SQLSTATE and message, when it is one. */
function pgError(err: unknown): { code: string; message: string } | null {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e?.code === 'string' ? { code: e.code, message: String(e.message) } : null;
}

/** The leader term a batch must still hold (server/ha/leader-lease.ts). */
export interface LeaderFence {
  readonly term: number;
  readonly holder: string;
}

export class PgSchedulerStore implements SchedulerStore {
  /** The epoch this instance claimed on its first load or apply; null before. */
  private epoch: number | null = null;
  private leader: LeaderFence | null = null;

  constructor(private readonly sql: Sql) {}

  /** From now on every batch also requires this leader term (set once this authority holds the lease). */
  fenceByLeaderTerm(leader: LeaderFence): void {
    this.leader = leader;
  }

  async apply(writes: readonly Write[]): Promise<void> {
    if (writes.length === 0 && this.epoch !== null) return;
    const events = planEvents(writes);
    // What is sent, and the write each entry came from (a refusal names its entry's index).
    const batch: Planned[] = [];
    const sent: Write[] = [];
    const superseded = supersededDurations(writes);
    for (const w of writes) {
      if (w.table === 'event' && !events.rowSlots.has(w)) continue;
      if (superseded?.has(w) === true) continue;
      batch.push(plan(w, events));
      sent.push(w);
    }
    const claim = this.epoch === null;
    try {
      const rows = await this.sql.unsafe(text.apply, [claim, this.epoch, this.leader?.term ?? null, this.leader?.holder ?? null, batch as never, events.slots]);
      if (claim) this.epoch = Number(rows[0]!['epoch']);
    } catch (err) {
      const pg = pgError(err);
      if (pg?.code === 'TSDEP') return this.deposed();
      if (pg?.code === 'TSMIS') {
        const missing = sent[Number(pg.message)];
        throw missingCohortError(missing?.table === 'cohort' ? missing.row.cohortId : '?');
      }
      const refused = pg?.code === 'TSGRD' ? sent[Number(pg.message)] : undefined;
      if (refused?.table === 'cohort') throw cohortConflict(refused.row);
      if (refused?.table === 'step') throw stepConflict(refused.row);
      if (refused?.table === 'lease') throw leaseConflict(refused.row);
      throw err;
    }
  }

  async recordCacheEvidence(cohortId: string, evidence: CacheEvidenceView): Promise<void> {
    await this.sql.unsafe(cacheEvidenceSql.upsert, cacheEvidenceParams(cohortId, evidence));
  }

  async load(nowMs: number, retentionMs: number): Promise<Snapshot> {
    return this.sql.begin(async (tx) => {
      // Claiming locks the writer row until this transaction ends: no batch of an older writer
      // commits between the claim and the reads, and every one after them is fenced.
      if (this.epoch === null) this.epoch = Number((await tx.unsafe(text.claim))[0]!.epoch);
      else if ((await this.fenceQuery(tx)).count !== 1) throw await this.deposedError(tx);
      const keep = `SELECT cohort_id FROM cohorts WHERE status = 'open' OR resolved_at_ms >= $1::bigint`;
      const since = [nowMs - retentionMs];
      const [cohorts, steps, leases, peers, memos, durations] = await Promise.all([
        tx.unsafe(`SELECT * FROM cohorts WHERE cohort_id IN (${keep}) ORDER BY created_at_ms, cohort_id`, since),
        tx.unsafe(`SELECT * FROM steps WHERE cohort_id IN (${keep}) ORDER BY cohort_id, step_id`, since),
        tx.unsafe(`SELECT * FROM leases WHERE cohort_id IN (${keep}) ORDER BY started_at_ms, lease_id`, since),
        tx.unsafe(`SELECT * FROM peers WHERE cohort_id IN (${keep}) ORDER BY joined_at_ms, cohort_id, peer_id`, since),
        tx.unsafe('SELECT * FROM memos WHERE expires_at_ms > $1::bigint ORDER BY memo_key', [nowMs]),
        tx.unsafe('SELECT * FROM durations ORDER BY duration_key'),
      ]);
      return foldLeasesIntoSteps({
        cohorts: cohorts.map(cohortFromRow),
        steps: steps.map(stepFromRow),
        leases: leases.map(leaseFromRow),
        peers: peers.map(peerFromRow),
        memos: memos.map(memoFromRow),
        durations: durations.map(durationFromRow),
      });
    }) as Promise<Snapshot>;
  }

  /** The store's pool is closed by the owning {@link PostgresStore}. */
  close(): void {}

  private fenceQuery(tx: postgres.TransactionSql<{ bigint: number }>): postgres.PendingQuery<postgres.Row[]> {
    return this.leader === null ? tx.unsafe(text.fence, [this.epoch]) : tx.unsafe(text.fenceWithTerm, [this.epoch, this.leader.term, this.leader.holder]);
  }

  /** The batch was fenced: says which epoch and term took over (read after the rollback). */
  private async deposed(): Promise<never> {
    throw await this.deposedError(this.sql);
  }

  private async deposedError(sql: Sql | postgres.TransactionSql<{ bigint: number }>): Promise<StoreConflictError> {
    const now = (await sql.unsafe(text.current))[0] as { epoch: number | null; term: number; holder: string | null } | undefined;
    const mine = this.leader === null ? `epoch ${this.epoch}` : `epoch ${this.epoch}, leader term ${this.leader.term}`;
    const theirs = now === undefined ? 'unknown' : `epoch ${now.epoch ?? '?'}${this.leader === null ? '' : `, leader term ${now.term} held by ${now.holder ?? 'nobody'}`}`;
    return new StoreConflictError('writer-deposed', 'store_writer', `this store writes as ${mine}, but another writer claimed ${theirs} since`);
  }
}

const json = (v: unknown): string | null => (v === null ? null : JSON.stringify(v));

function plan(w: Write, events: EventPlan): Planned {
  switch (w.table) {
    case 'cohort': {
      const r = w.row;
      if (w.created !== true) {
        // An existing cohort: only what changes after creation (migration 8).
        return {
          t: 'cohort.update',
          r: {
            cohort_id: r.cohortId, patchsets_json: JSON.stringify(r.patchsets), status: r.status, resolved_at_ms: r.resolvedAtMs,
            last_activity_ms: r.lastActivityMs, seconds_saved: r.secondsSaved, outcome_json: json(r.outcome),
          },
        };
      }
      return {
        t: w.table,
        r: {
          cohort_id: r.cohortId, repo: r.repo, base_ref: r.baseRef, cache_id: r.cacheId, pipeline_type: r.pipelineType, isolated: bool(r.isolated),
          schema_id: r.schema.id, schema_json: schemaJsonOf(r.schema), digest: r.digest, base_sha: r.baseSha, patchsets_json: JSON.stringify(r.patchsets),
          status: r.status, created_at_ms: r.createdAtMs, resolved_at_ms: r.resolvedAtMs, last_activity_ms: r.lastActivityMs, seconds_saved: r.secondsSaved,
          outcome_json: json(r.outcome), cohort_key: r.cohortKey,
        },
      };
    }
    case 'step': {
      const r = w.row;
      const cause = stepCauseColumns(r);
      return {
        t: w.table,
        r: {
          cohort_id: r.cohortId, step_id: r.stepId, status: r.status, attempts: r.attempts, failures: r.failures, lost_leases: r.lostLeases,
          failed_on_json: JSON.stringify(r.failedOn), built_by: r.builtBy, from_memo: bool(r.fromMemo), duration_ms: r.durationMs,
          fail_reason: cause.reason, fail_cause_json: cause.causeJson, fail_peer_id: r.failPeerId,
          fail_exit_code: r.failExitCode, fail_log_tail: r.failLogTail, resolved_at_ms: r.resolvedAtMs,
        },
      };
    }
    case 'lease': {
      const r = w.row;
      const outcome = r.end === null ? null : leaseOutcomeOf(r.end);
      const slots = events.leaseSlots.get(r.leaseId);
      return {
        t: w.table,
        r: {
          lease_id: r.leaseId, cohort_id: r.cohortId, step_id: r.stepId, peer_id: r.peerId, attempt: r.attempt, backup: bool(r.backup),
          started_at_ms: r.startedAtMs, ended_at_ms: r.endedAtMs, outcome, end_json: json(r.end),
          granted_slot: slots?.granted ?? null, ended_slot: slots?.ended ?? null,
        },
      };
    }
    case 'peer': {
      const r = w.row;
      return {
        t: w.table,
        r: {
          cohort_id: r.cohortId, peer_id: r.peerId, token_hash: r.tokenHash, registration_json: JSON.stringify(r.registration), resumable: bool(r.resumable),
          status: r.status, joined_at_ms: r.joinedAtMs, grace_ends_at_ms: r.graceEndsAtMs,
        },
      };
    }
    case 'memo': {
      const r = w.row;
      return {
        t: w.table,
        r: { memo_key: r.memoKey, step_id: r.stepId, cohort_id: r.cohortId, peer_id: r.peerId, duration_ms: r.durationMs, created_at_ms: r.createdAtMs, expires_at_ms: r.expiresAtMs },
      };
    }
    case 'memo.delete':
      return { t: w.table, r: { memo_key: w.memoKey } };
    case 'duration':
      return { t: w.table, r: { duration_key: w.row.durationKey, avg_ms: w.row.avgMs, samples: w.row.samples } };
    case 'event': {
      const r = w.row;
      return { t: w.table, r: { slot: events.rowSlots.get(w)!, cohort_id: r.cohortId, at_ms: r.atMs, kind: r.kind, step_id: r.stepId, peer_id: r.peerId, detail: r.detail } };
    }
  }
}
