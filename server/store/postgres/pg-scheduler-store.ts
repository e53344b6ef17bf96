import type postgres from 'postgres';
import { describeStepFailure, leaseOutcomeOf } from '../../core/causes.js';
import type { Snapshot, Write } from '../../core/records.js';
import { StoreConflictError, type SchedulerStore, type StoreConflictKind } from '../../core/store-port.js';
import { cohortFromRow, durationFromRow, leaseFromRow, memoFromRow, peerFromRow, stepFromRow } from '../row-records.js';
import type { Sql } from './pg-connection.js';

/**
 * The scheduler's side of the PostgreSQL store. A batch is one transaction
 * whose statements are pipelined (sent together, one round trip to wait on):
 * first the writer fence, then one statement per write. Guarded rows change
 * through conditional upserts (`ON CONFLICT ... DO UPDATE ... WHERE`); one
 * that changed no row means the guard refused it, and the whole batch rolls
 * back with a {@link StoreConflictError}. With a leader term (server/ha), the
 * fence also checks that the term is still the lease row's, in the same
 * statement, so a deposed authority cannot commit.
 */
const bool = (v: boolean): number => (v ? 1 : 0);

const text = {
  cohort: `
    INSERT INTO cohorts (cohort_id, repo, base_ref, cache_id, pipeline_type, isolated, schema_id, schema_json, digest,
                         base_sha, patchsets_json, status, created_at_ms, resolved_at_ms, last_activity_ms, seconds_saved, outcome_json)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
    ON CONFLICT (cohort_id) DO UPDATE SET patchsets_json = excluded.patchsets_json, status = excluded.status,
      resolved_at_ms = excluded.resolved_at_ms, last_activity_ms = excluded.last_activity_ms, seconds_saved = excluded.seconds_saved,
      outcome_json = excluded.outcome_json
    WHERE cohorts.status <> 'cancelled' OR excluded.status = 'cancelled'`,
  step: `
    INSERT INTO steps (cohort_id, step_id, status, attempts, failures, lost_leases, failed_on_json, built_by, from_memo,
                       duration_ms, fail_reason, fail_cause_json, fail_peer_id, fail_exit_code, fail_log_tail, resolved_at_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT (cohort_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
      failures = excluded.failures, lost_leases = excluded.lost_leases, failed_on_json = excluded.failed_on_json,
      built_by = excluded.built_by, from_memo = excluded.from_memo, duration_ms = excluded.duration_ms,
      fail_reason = excluded.fail_reason, fail_cause_json = excluded.fail_cause_json, fail_peer_id = excluded.fail_peer_id,
      fail_exit_code = excluded.fail_exit_code, fail_log_tail = excluded.fail_log_tail, resolved_at_ms = excluded.resolved_at_ms
    WHERE steps.status <> 'succeeded'
       OR (excluded.status = 'succeeded' AND excluded.built_by IS NOT DISTINCT FROM steps.built_by AND excluded.from_memo = steps.from_memo)`,
  success: 'INSERT INTO step_successes (cohort_id, step_id, lease_id, peer_id, at_ms) VALUES ($1, $2, $3, $4, $5)',
  lease: `
    INSERT INTO leases (lease_id, cohort_id, step_id, peer_id, attempt, backup, started_at_ms, ended_at_ms, outcome, end_json)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (lease_id) DO UPDATE SET ended_at_ms = excluded.ended_at_ms, outcome = excluded.outcome, end_json = excluded.end_json
    WHERE leases.outcome IS NULL
       OR (excluded.outcome IS NOT DISTINCT FROM leases.outcome AND excluded.end_json IS NOT DISTINCT FROM leases.end_json
           AND excluded.ended_at_ms IS NOT DISTINCT FROM leases.ended_at_ms)`,
  peer: `
    INSERT INTO peers (cohort_id, peer_id, token_hash, registration_json, resumable, status, joined_at_ms, grace_ends_at_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (cohort_id, peer_id) DO UPDATE SET token_hash = excluded.token_hash, registration_json = excluded.registration_json,
      resumable = excluded.resumable, status = excluded.status, joined_at_ms = excluded.joined_at_ms, grace_ends_at_ms = excluded.grace_ends_at_ms`,
  memo: `
    INSERT INTO memos (memo_key, step_id, cohort_id, peer_id, duration_ms, created_at_ms, expires_at_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (memo_key) DO UPDATE SET step_id = excluded.step_id, cohort_id = excluded.cohort_id, peer_id = excluded.peer_id,
      duration_ms = excluded.duration_ms, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms`,
  memoDelete: 'DELETE FROM memos WHERE memo_key = $1',
  duration: `
    INSERT INTO durations (duration_key, avg_ms, samples) VALUES ($1, $2, $3)
    ON CONFLICT (duration_key) DO UPDATE SET avg_ms = excluded.avg_ms, samples = excluded.samples`,
  event: 'INSERT INTO events (cohort_id, at_ms, kind, step_id, peer_id, detail) VALUES ($1, $2, $3, $4, $5, $6)',
  claim: 'INSERT INTO store_writer (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET epoch = store_writer.epoch + 1 RETURNING epoch',
  fence: 'UPDATE store_writer SET epoch = epoch WHERE id = 1 AND epoch = $1',
  fenceWithTerm: `UPDATE store_writer SET epoch = epoch WHERE id = 1 AND epoch = $1
                  AND EXISTS (SELECT 1 FROM leader_lease WHERE id = 1 AND term = $2 AND holder = $3)`,
  current: `SELECT (SELECT epoch FROM store_writer WHERE id = 1) AS epoch, l.term, l.holder FROM leader_lease l WHERE l.id = 1`,
} as const;

type Param = string | number | null;

/** One statement of a batch: what to run and, for a guarded row, what a refusal means. */
interface Planned {
  readonly sql: string;
  readonly params: Param[];
  readonly guard?: { readonly kind: StoreConflictKind; readonly row: string; readonly detail: string };
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
    const planned = writes.map(plan);
    await this.sql.begin(async (tx) => {
      const first = this.epoch === null ? tx.unsafe(text.claim) : this.fenceQuery(tx);
      // Pipelined: every statement is sent before the first reply is awaited.
      const rest = planned.map((p) => tx.unsafe(p.sql, p.params));
      const [head, ...results] = await Promise.all([first, ...rest]);
      if (this.epoch === null) this.epoch = Number((head as unknown as { epoch: number }[])[0]!.epoch);
      else if (head!.count !== 1) await this.deposed(tx);
      results.forEach((r, i) => {
        const guard = planned[i]!.guard;
        if (guard && r.count === 0) throw new StoreConflictError(guard.kind, guard.row, guard.detail);
      });
    });
  }

  async load(nowMs: number, retentionMs: number): Promise<Snapshot> {
    return this.sql.begin(async (tx) => {
      // Claiming locks the writer row until this transaction ends: no batch of an older writer
      // commits between the claim and the reads, and every one after them is fenced.
      if (this.epoch === null) this.epoch = Number((await tx.unsafe(text.claim))[0]!.epoch);
      else if ((await this.fenceQuery(tx)).count !== 1) await this.deposed(tx);
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
      return {
        cohorts: cohorts.map(cohortFromRow),
        steps: steps.map(stepFromRow),
        leases: leases.map(leaseFromRow),
        peers: peers.map(peerFromRow),
        memos: memos.map(memoFromRow),
        durations: durations.map(durationFromRow),
      };
    }) as Promise<Snapshot>;
  }

  /** The store's pool is closed by the owning {@link PostgresStore}. */
  close(): void {}

  private fenceQuery(tx: postgres.TransactionSql<{ bigint: number }>): postgres.PendingQuery<postgres.Row[]> {
    return this.leader === null ? tx.unsafe(text.fence, [this.epoch]) : tx.unsafe(text.fenceWithTerm, [this.epoch, this.leader.term, this.leader.holder]);
  }

  private async deposed(tx: postgres.TransactionSql<{ bigint: number }>): Promise<never> {
    const now = (await tx.unsafe(text.current))[0] as { epoch: number | null; term: number; holder: string | null } | undefined;
    const mine = this.leader === null ? `epoch ${this.epoch}` : `epoch ${this.epoch}, leader term ${this.leader.term}`;
    const theirs = now === undefined ? 'unknown' : `epoch ${now.epoch ?? '?'}${this.leader === null ? '' : `, leader term ${now.term} held by ${now.holder ?? 'nobody'}`}`;
    throw new StoreConflictError('writer-deposed', 'store_writer', `this store writes as ${mine}, but another writer claimed ${theirs} since`);
  }
}

function plan(w: Write): Planned {
  switch (w.table) {
    case 'cohort': {
      const r = w.row;
      return {
        sql: text.cohort,
        params: [r.cohortId, r.repo, r.baseRef, r.cacheId, r.pipelineType, bool(r.isolated), r.schema.id, JSON.stringify(r.schema), r.digest, r.baseSha,
          JSON.stringify(r.patchsets), r.status, r.createdAtMs, r.resolvedAtMs, r.lastActivityMs, r.secondsSaved, r.outcome === null ? null : JSON.stringify(r.outcome)],
        guard: { kind: 'cohort-cancelled', row: `cohorts[${r.cohortId}]`, detail: `the cohort is cancelled; refusing to make it ${r.status}` },
      };
    }
    case 'step': {
      const r = w.row;
      const detail = `the step already succeeded; refusing to make it ${r.status}${r.status === 'succeeded' ? ` (built by ${r.builtBy ?? 'a memo'})` : ''}`;
      return {
        sql: text.step,
        params: [r.cohortId, r.stepId, r.status, r.attempts, r.failures, r.lostLeases, JSON.stringify(r.failedOn), r.builtBy, bool(r.fromMemo), r.durationMs,
          r.failCause === null ? null : describeStepFailure(r.failCause), r.failCause === null ? null : JSON.stringify(r.failCause), r.failPeerId, r.failExitCode,
          r.failLogTail, r.resolvedAtMs],
        guard: { kind: 'step-succeeded', row: `steps[${r.cohortId}/${r.stepId}]`, detail },
      };
    }
    case 'success':
      return { sql: text.success, params: [w.cohortId, w.stepId, w.leaseId, w.peerId, w.atMs] };
    case 'lease': {
      const r = w.row;
      const outcome = r.end === null ? null : leaseOutcomeOf(r.end);
      return {
        sql: text.lease,
        params: [r.leaseId, r.cohortId, r.stepId, r.peerId, r.attempt, bool(r.backup), r.startedAtMs, r.endedAtMs, outcome, r.end === null ? null : JSON.stringify(r.end)],
        guard: { kind: 'lease-ended', row: `leases[${r.leaseId}]`, detail: `the lease already ended; refusing to ${outcome === null ? 'make it live again' : `end it again as ${outcome}`}` },
      };
    }
    case 'peer': {
      const r = w.row;
      return {
        sql: text.peer,
        params: [r.cohortId, r.peerId, r.tokenHash, JSON.stringify(r.registration), bool(r.resumable), r.status, r.joinedAtMs, r.graceEndsAtMs],
      };
    }
    case 'memo': {
      const r = w.row;
      return { sql: text.memo, params: [r.memoKey, r.stepId, r.cohortId, r.peerId, r.durationMs, r.createdAtMs, r.expiresAtMs] };
    }
    case 'memo.delete':
      return { sql: text.memoDelete, params: [w.memoKey] };
    case 'duration':
      return { sql: text.duration, params: [w.row.durationKey, w.row.avgMs, w.row.samples] };
    case 'event': {
      const r = w.row;
      return { sql: text.event, params: [r.cohortId, r.atMs, r.kind, r.stepId, r.peerId, r.detail] };
    }
  }
}
