import type Database from 'better-sqlite3';
import { z } from 'zod';
import type { CacheEvidenceView, CohortDetailView, CohortFilter, CohortView, EventView, LeaseView, PeerFilter, PeerView, ReadModel, StatsView, StepView } from '../core/read-model.js';
import { cacheEvidenceFromRow, cacheEvidenceSql, sqliteText } from './cache-evidence-rows.js';
import { leaseEventsOf, mergeTimeline } from './lease-events.js';
import { rowChecker } from './row-columns.js';
import { keyOf, stepCausesFromColumn } from './row-records.js';
import {
  cohortColumns,
  eventRowSchema,
  leaseRowSchema,
  parseJsonColumn,
  parseRow,
  peerRowSchema,
  stepRowSchema,
  storedCohortOutcome,
  storedLeaseEnd,
  storedRegistration,
  storedSchemaDef,
  storedStringList,
} from './row-schemas.js';

/**
 * The read model on SQLite: committed state, history included, as typed views.
 * Every row is validated as it is read back (see row-schemas.ts).
 */
const n = z.number().int().min(0);

/**
 * Steps of cohort `c` whose row says pending while a lease of them is live: leased (a grant writes
 * no step row, lease-events.ts). Both stores use this text.
 */
export const pendingLeasedSql = `(SELECT count(DISTINCT l.step_id) FROM leases l JOIN steps s ON s.cohort_id = l.cohort_id AND s.step_id = l.step_id
       WHERE l.cohort_id = c.cohort_id AND l.ended_at_ms IS NULL AND s.status = 'pending')`;

/** A cohort row with its step and peer counts and its peers' pipeline names. */
export const cohortListRow = rowChecker({
  ...cohortColumns,
  n_total: 'count',
  n_pending: 'count',
  n_leased: 'count',
  n_succeeded: 'count',
  n_failed: 'count',
  n_memo: 'count',
  n_peers: 'count',
  pipeline_names_json: 'text',
} as const);

/**
 * Steps of cohort `c` with a live lease and no row, or a row that says pending: leased. A grant
 * writes no step row, and a new cohort's steps have none until they change (migration 9).
 */
const unwrittenLeasedSql = `(SELECT count(DISTINCT l.step_id) FROM leases l
       WHERE l.cohort_id = c.cohort_id AND l.ended_at_ms IS NULL
         AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.cohort_id = l.cohort_id AND s.step_id = l.step_id AND s.status <> 'pending'))`;

/** Steps of cohort `c` with no row: its schema's number of steps (`step_count`) less its rows. */
const unwrittenSql = `max(0, c.step_count - (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id))`;

/** Counts: a step with no row is pending, or leased while a lease of it is live (as a pending row is). */
const cohortSelect = `
  SELECT c.*,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id) + ${unwrittenSql} AS n_total,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'pending') + ${unwrittenSql} - ${unwrittenLeasedSql} AS n_pending,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'leased') + ${unwrittenLeasedSql} AS n_leased,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'succeeded') AS n_succeeded,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'failed') AS n_failed,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.from_memo = 1) AS n_memo,
    (SELECT count(*) FROM peers p WHERE p.cohort_id = c.cohort_id) AS n_peers,
    (SELECT json_group_array(name) FROM (
       SELECT DISTINCT json_extract(p.registration_json, '$.pipelineName') AS name FROM peers p
       WHERE p.cohort_id = c.cohort_id ORDER BY name)) AS pipeline_names_json
  FROM cohorts c`;

export const statsRow = z.object({
  cohorts_open: n,
  cohorts_complete: n,
  cohorts_cancelled: n,
  steps_succeeded: n,
  steps_memo: n,
  steps_failed: n,
  steps_pending: n,
  leases_granted: n,
  leases_lost: n,
  leases_backups: n,
  peers_connected: n,
  peers_grace: n,
  seconds_saved: z.number().min(0),
});

export class SqliteReadModel implements ReadModel {
  constructor(private readonly db: Database.Database) {}

  async cacheEvidence(cohortId: string): Promise<CacheEvidenceView[]> {
    return this.db.prepare(sqliteText(cacheEvidenceSql.ofCohort)).all(cohortId).map(cacheEvidenceFromRow);
  }

  async listCohorts(filter: CohortFilter): Promise<CohortView[]> {
    const rows = this.db
      .prepare(
        `${cohortSelect}
        WHERE (@status IS NULL OR c.status = @status)
          AND (@repo IS NULL OR c.repo = @repo)
          AND (@pipelineType IS NULL OR c.pipeline_type = @pipelineType)
          AND (@pipelineName IS NULL OR EXISTS (SELECT 1 FROM peers p WHERE p.cohort_id = c.cohort_id
                                                 AND json_extract(p.registration_json, '$.pipelineName') = @pipelineName))
          AND (@createdBeforeMs IS NULL OR c.created_at_ms < @createdBeforeMs
               OR (@beforeCohortId IS NOT NULL AND c.created_at_ms = @createdBeforeMs AND c.cohort_id < @beforeCohortId))
          AND (@outcomeKind IS NULL OR json_extract(c.outcome_json, '$.kind') = @outcomeKind)
          AND (@cancelledBy IS NULL OR json_extract(c.outcome_json, '$.by') = @cancelledBy)
          AND (@createdSinceMs IS NULL OR c.created_at_ms >= @createdSinceMs)
        ORDER BY c.created_at_ms DESC, c.cohort_id DESC LIMIT @limit`,
      )
      .all({
        status: filter.status ?? null,
        repo: filter.repo ?? null,
        pipelineType: filter.pipelineType ?? null,
        pipelineName: filter.pipelineName ?? null,
        createdBeforeMs: filter.createdBeforeMs ?? null,
        beforeCohortId: filter.beforeCohortId ?? null,
        ...outcomeMatch(filter.outcome),
        createdSinceMs: filter.createdSinceMs ?? null,
        limit: checkedLimit(filter.limit),
      });
    return rows.map(cohortViewFrom);
  }

  async cohortDetail(cohortId: string): Promise<CohortDetailView | null> {
    const read = this.db.transaction(() => {
      const row = this.db.prepare(`${cohortSelect} WHERE c.cohort_id = ?`).get(cohortId);
      if (row === undefined) return null;
      const cohort = cohortViewFrom(row);
      const schemaJson = this.db.prepare('SELECT schema_json FROM cohort_schemas WHERE cohort_id = ?').pluck().get(cohortId);
      if (typeof schemaJson !== 'string') throw new Error(`corrupt database: cohorts[${cohortId}] has no schema (cohort_schemas)`);
      const schema = parseJsonColumn(storedSchemaDef, schemaJson, `cohorts[${cohortId}].schema_json`);
      const leaseRows = this.db.prepare('SELECT * FROM leases WHERE cohort_id = ? ORDER BY started_at_ms, attempt, lease_id').all(cohortId);
      const leases = leaseRows.map(leaseViewFrom);
      const steps = stepViewsFrom(cohortId, schema, this.db.prepare('SELECT * FROM steps WHERE cohort_id = ?').all(cohortId), leases, { unwrittenArePending: true });
      const peers = this.db.prepare('SELECT * FROM peers WHERE cohort_id = ? ORDER BY joined_at_ms, peer_id').all(cohortId).map(peerViewFrom);
      const stored = this.db.prepare('SELECT * FROM events WHERE cohort_id = ? ORDER BY id').all(cohortId).map(eventViewFrom);
      return { cohort, universe: schema.universe, steps, leases, peers, timeline: timelineOf(cohortId, stored, leaseRows, leases, steps) };
    });
    return read();
  }

  async listPeers(filter: PeerFilter): Promise<PeerView[]> {
    return this.db
      .prepare(
        `SELECT * FROM peers
         WHERE (@statuses IS NULL OR status IN (SELECT value FROM json_each(@statuses))) AND (@cohortId IS NULL OR cohort_id = @cohortId)
         ORDER BY joined_at_ms DESC, peer_id DESC LIMIT @limit`,
      )
      .all({ statuses: filter.statuses === undefined ? null : JSON.stringify(filter.statuses), cohortId: filter.cohortId ?? null, limit: checkedLimit(filter.limit) })
      .map(peerViewFrom);
  }

  async stats(): Promise<StatsView> {
    const raw = this.db
      .prepare(
        `SELECT
          (SELECT count(*) FROM cohorts WHERE status = 'open') AS cohorts_open,
          (SELECT count(*) FROM cohorts WHERE status = 'complete') AS cohorts_complete,
          (SELECT count(*) FROM cohorts WHERE status = 'cancelled') AS cohorts_cancelled,
          (SELECT count(*) FROM steps WHERE status = 'succeeded' AND from_memo = 0) AS steps_succeeded,
          (SELECT count(*) FROM steps WHERE from_memo = 1) AS steps_memo,
          (SELECT count(*) FROM steps WHERE status = 'failed') AS steps_failed,
          (SELECT count(*) FROM steps s JOIN cohorts c USING (cohort_id) WHERE c.status = 'open' AND s.status IN ('pending', 'leased'))
            + (SELECT coalesce(sum(${unwrittenSql}), 0) FROM cohorts c WHERE c.status = 'open') AS steps_pending,
          (SELECT count(*) FROM leases) AS leases_granted,
          (SELECT count(*) FROM leases WHERE outcome = 'lost') AS leases_lost,
          (SELECT count(*) FROM leases WHERE backup = 1) AS leases_backups,
          (SELECT count(*) FROM peers WHERE status = 'connected') AS peers_connected,
          (SELECT count(*) FROM peers WHERE status = 'disconnected') AS peers_grace,
          (SELECT coalesce(sum(seconds_saved), 0) FROM cohorts) AS seconds_saved`,
      )
      .get();
    const r = parseRow(statsRow, raw, 'stats');
    return {
      cohorts: { open: r.cohorts_open, complete: r.cohorts_complete, cancelled: r.cohorts_cancelled },
      steps: { succeeded: r.steps_succeeded, reusedFromMemo: r.steps_memo, failed: r.steps_failed, pending: r.steps_pending },
      leases: { granted: r.leases_granted, lost: r.leases_lost, backups: r.leases_backups },
      peers: { connected: r.peers_connected, inGrace: r.peers_grace },
      secondsSaved: r.seconds_saved,
    };
  }
}

export function checkedLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RangeError(`read model: limit must be an integer from 1 to 1000, got ${limit}`);
  return limit;
}

export function cohortViewFrom(raw: unknown): CohortView {
  const r = parseRow(cohortListRow, raw, `cohorts[${keyOf(raw, 'cohort_id')}]`);
  const where = `cohorts[${r.cohort_id}]`;
  return {
    cohortId: r.cohort_id,
    schemaId: r.schema_id,
    digest: r.digest,
    repo: r.repo,
    baseRef: r.base_ref,
    baseSha: r.base_sha,
    cohortKey: r.cohort_key,
    cacheId: r.cache_id,
    pipelineType: r.pipeline_type,
    pipelineNames: parseJsonColumn(storedStringList, r.pipeline_names_json, `${where}: peers' pipeline names`),
    isolated: r.isolated,
    patchsets: parseJsonColumn(storedStringList, r.patchsets_json, `${where}.patchsets_json`),
    status: r.status,
    createdAtMs: r.created_at_ms,
    resolvedAtMs: r.resolved_at_ms,
    lastActivityMs: r.last_activity_ms,
    secondsSaved: r.seconds_saved,
    outcome: r.outcome_json === null ? null : parseJsonColumn(storedCohortOutcome, r.outcome_json, `${where}.outcome_json`),
    steps: { total: r.n_total, pending: r.n_pending, leased: r.n_leased, succeeded: r.n_succeeded, failed: r.n_failed, fromMemo: r.n_memo },
    peers: r.n_peers,
  };
}

export function leaseViewFrom(raw: unknown): LeaseView {
  const r = parseRow(leaseRowSchema, raw, `leases[${keyOf(raw, 'lease_id')}]`);
  return {
    leaseId: r.lease_id,
    stepId: r.step_id,
    peerId: r.peer_id,
    attempt: r.attempt,
    backup: r.backup,
    startedAtMs: r.started_at_ms,
    endedAtMs: r.ended_at_ms,
    outcome: r.outcome,
    end: r.end_json === null ? null : parseJsonColumn(storedLeaseEnd, r.end_json, `leases[${r.lease_id}].end_json`),
  };
}

export function peerViewFrom(raw: unknown): PeerView {
  const where = `peers[${keyOf(raw, 'cohort_id')}/${keyOf(raw, 'peer_id')}]`;
  const r = parseRow(peerRowSchema, raw, where);
  const reg = parseJsonColumn(storedRegistration, r.registration_json, `${where}.registration_json`);
  return {
    peerId: r.peer_id,
    cohortId: r.cohort_id,
    status: r.status,
    resumable: r.resumable,
    joinedAtMs: r.joined_at_ms,
    graceEndsAtMs: r.grace_ends_at_ms,
    repo: reg.repo,
    baseRef: reg.baseRef,
    baseSha: reg.baseSha,
    patchsets: reg.patchsets,
    changeRef: reg.changeRef,
    pipelineName: reg.pipelineName,
    pipelineType: reg.pipelineType,
    isolated: reg.isolated,
    cacheId: reg.cacheId,
    labels: reg.labels ? [...reg.labels] : [],
    cohortKey: reg.cohortKey ?? null,
    ciJobUrl: reg.ciJobUrl ?? null,
  };
}

/** A step view's cause fields from its row: `failReason`/`failCause` when failed, `unsharedReason`/`unsharedCause` when unshared. */
export function stepCauseViews(
  r: { status: string; fail_reason: string | null; fail_cause_json: string | null },
  where: string,
): Pick<StepView, 'failReason' | 'failCause' | 'unsharedCause' | 'unsharedReason'> {
  const { failCause, unsharedCause } = stepCausesFromColumn(r.status, r.fail_cause_json, where);
  const unshared = r.status === 'unshared';
  const unsharedView = unsharedCause === null ? null : unsharedCause.kind === 'need-unshared' ? { ...unsharedCause } : { ...unsharedCause, requires: [...unsharedCause.requires], missing: [...unsharedCause.missing] };
  return { failReason: unshared ? null : r.fail_reason, failCause, unsharedCause: unsharedView, unsharedReason: unshared ? r.fail_reason : null };
}

/** A cohort's timeline: its event rows and the events its lease rows stand for, in order. */
export function timelineOf(cohortId: string, stored: readonly EventView[], leaseRows: readonly unknown[], leases: readonly LeaseView[], steps: readonly StepView[]): EventView[] {
  const derived: EventView[] = [];
  const durations = new Map(steps.map((s) => [s.stepId, s.durationMs]));
  leaseRows.forEach((raw, i) => {
    const r = raw as Record<string, unknown>;
    const granted = seqColumn(r, 'granted_seq');
    const ended = seqColumn(r, 'ended_seq');
    if (granted === null && ended === null) return;
    const l = leases[i]!;
    const durationMs = durations.get(l.stepId) ?? null;
    const row = { lease_id: l.leaseId, step_id: l.stepId, peer_id: l.peerId, attempt: l.attempt, backup: l.backup, started_at_ms: l.startedAtMs, ended_at_ms: l.endedAtMs, granted_seq: granted, ended_seq: ended };
    derived.push(...leaseEventsOf(row, l.end, durationMs, cohortId));
  });
  return mergeTimeline(stored, derived);
}

function seqColumn(r: Record<string, unknown>, column: string): number | null {
  const v = r[column];
  if (v === null || v === undefined) return null;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new Error(`corrupt database: leases[${String(r['lease_id'])}].${column}: expected an integer ≥ 1 or null, got ${String(v)}`);
  return n;
}

export function eventViewFrom(raw: unknown): EventView {
  const r = parseRow(eventRowSchema, raw, `events[${String((raw as { id?: unknown }).id ?? '?')}]`);
  return { seq: r.id, atMs: r.at_ms, kind: r.kind, stepId: r.step_id, peerId: r.peer_id, detail: r.detail };
}

/** A list filter's outcome as the stored outcome's `kind` and, for a cancel, who cancelled (`outcome_json`). */
export function outcomeMatch(outcome: CohortFilter['outcome']): { outcomeKind: string | null; cancelledBy: string | null } {
  switch (outcome) {
    case undefined:
      return { outcomeKind: null, cancelledBy: null };
    case 'cancelled':
      return { outcomeKind: 'cancelled', cancelledBy: 'admin' };
    case 'abandoned':
      return { outcomeKind: 'cancelled', cancelledBy: 'abandoned' };
    default:
      return { outcomeKind: outcome, cancelledBy: null };
  }
}

/**
 * A cohort's steps in its schema's order, from its raw `steps` rows (both
 * stores read them the same way). A step the schema lists without a row is
 * pending and never leased where the store writes no row until a step changes
 * (`unwrittenArePending`, SQLite since migration 9); elsewhere a corrupt
 * database, named.
 */
export function stepViewsFrom(
  cohortId: string,
  schema: z.infer<typeof storedSchemaDef>,
  rawRows: readonly unknown[],
  leases: readonly LeaseView[],
  options: { readonly unwrittenArePending: boolean } = { unwrittenArePending: false },
): StepView[] {
  const byStep = new Map(rawRows.map((raw) => parseRow(stepRowSchema, raw, `steps[${cohortId}/${keyOf(raw, 'step_id')}]`)).map((r) => [r.step_id, r]));
  const fromLeases = new Map<string, { attempt: number; live: boolean }>();
  for (const l of leases) {
    const s = fromLeases.get(l.stepId);
    if (!s) fromLeases.set(l.stepId, { attempt: l.attempt, live: l.endedAtMs === null });
    else {
      s.attempt = Math.max(s.attempt, l.attempt);
      s.live ||= l.endedAtMs === null;
    }
  }
  return schema.steps.map((def): StepView => {
    const r = byStep.get(def.id) ?? (options.unwrittenArePending ? unwrittenStepRow(cohortId, def.id) : undefined);
    if (!r) throw new Error(`corrupt database: cohorts[${cohortId}].schema_json lists step "${def.id}", which has no row in steps`);
    // A grant writes no step row: a live lease makes a pending row leased, and attempts count every lease (lease-events.ts).
    const l = fromLeases.get(def.id);
    return {
      stepId: def.id,
      target: def.target,
      needs: def.needs,
      estimateSec: def.estimateSec ?? null,
      requires: def.requires ? [...def.requires] : [],
      status: r.status === 'pending' && l?.live === true ? 'leased' : r.status,
      attempts: Math.max(r.attempts, l?.attempt ?? 0),
      failures: r.failures,
      lostLeases: r.lost_leases,
      failedOn: parseJsonColumn(storedStringList, r.failed_on_json, `steps[${cohortId}/${def.id}].failed_on_json`),
      builtBy: r.built_by,
      fromMemo: r.from_memo,
      durationMs: r.duration_ms,
      ...stepCauseViews(r, `steps[${cohortId}/${def.id}].fail_cause_json`),
      failPeerId: r.fail_peer_id,
      failExitCode: r.fail_exit_code,
      failLogTail: r.fail_log_tail,
      resolvedAtMs: r.resolved_at_ms,
    };
  });
}

/** The row a step would have as its cohort started it (records.ts `pendingStepRecord`), for a step with none. */
function unwrittenStepRow(cohortId: string, stepId: string): ReturnType<typeof stepRowSchema.check> {
  return {
    cohort_id: cohortId, step_id: stepId, status: 'pending', attempts: 0, failures: 0, lost_leases: 0, failed_on_json: '[]', built_by: null, from_memo: false,
    duration_ms: null, fail_reason: null, fail_cause_json: null, fail_peer_id: null, fail_exit_code: null, fail_log_tail: null, resolved_at_ms: null,
  };
}
