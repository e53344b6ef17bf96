import type Database from 'better-sqlite3';
import { parseJsonColumn, storedRegistration, storedSchemaDef, storedStringList } from './row-schemas.js';

/**
 * The read side for the HTTP API: what operators see in `/api/v1/...`. Reads
 * committed state from SQLite, so it shows history as well as what is live.
 */
type Row = Record<string, unknown>;

export interface CohortSummary {
  id: string;
  schemaId: string;
  digest: string;
  repo: string;
  baseRef: string;
  baseSha: string | null;
  cacheId: string;
  pipelineType: string;
  isolated: boolean;
  patchsets: string[];
  status: string;
  createdAt: string;
  resolvedAt: string | null;
  secondsSaved: number | null;
  steps: { total: number; pending: number; leased: number; succeeded: number; failed: number; fromMemo: number };
  peers: number;
}

/** A cohort row with its step and peer counts. */
const cohortSelect = `
  SELECT c.*,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id) AS n_total,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'pending') AS n_pending,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'leased') AS n_leased,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'succeeded') AS n_succeeded,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'failed') AS n_failed,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.from_memo = 1) AS n_memo,
    (SELECT count(*) FROM peers p WHERE p.cohort_id = c.cohort_id) AS n_peers
  FROM cohorts c`;

const iso = (ms: unknown): string | null => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

export class StoreQueries {
  constructor(private readonly db: Database.Database) {}

  listCohorts(filter: { status?: string; limit: number }): CohortSummary[] {
    const rows = this.db
      .prepare(`${cohortSelect} WHERE (@status IS NULL OR c.status = @status) ORDER BY c.created_at_ms DESC, c.cohort_id DESC LIMIT @limit`)
      .all({ status: filter.status ?? null, limit: filter.limit }) as Row[];
    return rows.map((r) => this.summary(r));
  }

  cohortDetail(cohortId: string): { cohort: CohortSummary; steps: unknown[]; peers: unknown[]; timeline: unknown[] } | null {
    const summary = this.listCohortById(cohortId);
    if (!summary) return null;
    const raw = this.db.prepare('SELECT schema_json FROM cohorts WHERE cohort_id = ?').get(cohortId) as Row;
    const schema = parseJsonColumn(storedSchemaDef, String(raw.schema_json), `cohorts[${cohortId}].schema_json`);
    const stepRows = new Map((this.db.prepare('SELECT * FROM steps WHERE cohort_id = ?').all(cohortId) as Row[]).map((r) => [String(r.step_id), r]));
    const steps = schema.steps.map((def) => {
      const r = stepRows.get(def.id) ?? {};
      return {
        id: def.id,
        target: def.target,
        needs: def.needs,
        estimateSec: def.estimateSec ?? null,
        status: r.status ?? null,
        attempts: r.attempts ?? 0,
        failures: r.failures ?? 0,
        lostLeases: r.lost_leases ?? 0,
        builtBy: r.built_by ?? null,
        fromMemo: r.from_memo === 1,
        durationMs: r.duration_ms ?? null,
        failReason: r.fail_reason ?? null,
        failPeerId: r.fail_peer_id ?? null,
        failExitCode: r.fail_exit_code ?? null,
        failedOn: r.failed_on_json ? parseJsonColumn(storedStringList, String(r.failed_on_json), `steps[${cohortId}/${def.id}].failed_on_json`) : [],
        resolvedAt: iso(r.resolved_at_ms),
      };
    });
    const peers = (this.db.prepare('SELECT * FROM peers WHERE cohort_id = ? ORDER BY joined_at_ms').all(cohortId) as Row[]).map((r) => this.peer(r));
    const timeline = (this.db.prepare('SELECT * FROM events WHERE cohort_id = ? ORDER BY id').all(cohortId) as Row[]).map((r) => ({
      at: iso(r.at_ms),
      kind: r.kind,
      stepId: r.step_id ?? null,
      peerId: r.peer_id ?? null,
      detail: r.detail ?? null,
    }));
    return { cohort: summary, steps, peers, timeline };
  }

  listPeers(filter: { status?: string; limit: number }): unknown[] {
    const rows = this.db
      .prepare('SELECT * FROM peers WHERE (@status IS NULL OR status = @status) ORDER BY joined_at_ms DESC LIMIT @limit')
      .all({ status: filter.status ?? null, limit: filter.limit }) as Row[];
    return rows.map((r) => this.peer(r));
  }

  stats(): Record<string, unknown> {
    const count = (sql: string): number => Number((this.db.prepare(sql).get() as Row).n);
    return {
      cohorts: {
        open: count("SELECT count(*) AS n FROM cohorts WHERE status = 'open'"),
        complete: count("SELECT count(*) AS n FROM cohorts WHERE status = 'complete'"),
        cancelled: count("SELECT count(*) AS n FROM cohorts WHERE status = 'cancelled'"),
      },
      steps: {
        succeeded: count("SELECT count(*) AS n FROM steps WHERE status = 'succeeded' AND from_memo = 0"),
        reusedFromMemo: count('SELECT count(*) AS n FROM steps WHERE from_memo = 1'),
        failed: count("SELECT count(*) AS n FROM steps WHERE status = 'failed'"),
        pending: count("SELECT count(*) AS n FROM steps s JOIN cohorts c USING (cohort_id) WHERE c.status = 'open' AND s.status IN ('pending', 'leased')"),
      },
      leases: {
        granted: count('SELECT count(*) AS n FROM leases'),
        lost: count("SELECT count(*) AS n FROM leases WHERE outcome = 'lost'"),
        backups: count('SELECT count(*) AS n FROM leases WHERE backup = 1'),
      },
      peers: {
        connected: count("SELECT count(*) AS n FROM peers WHERE status = 'connected'"),
        inGrace: count("SELECT count(*) AS n FROM peers WHERE status = 'disconnected'"),
      },
      secondsSaved: Number((this.db.prepare('SELECT coalesce(sum(seconds_saved), 0) AS n FROM cohorts').get() as Row).n),
    };
  }

  private listCohortById(cohortId: string): CohortSummary | null {
    const row = this.db.prepare(`${cohortSelect} WHERE c.cohort_id = ?`).get(cohortId) as Row | undefined;
    return row ? this.summary(row) : null;
  }

  private summary(r: Row): CohortSummary {
    const id = String(r.cohort_id);
    return {
      id,
      schemaId: String(r.schema_id),
      digest: String(r.digest),
      repo: String(r.repo),
      baseRef: String(r.base_ref),
      baseSha: (r.base_sha as string | null) ?? null,
      cacheId: String(r.cache_id),
      pipelineType: String(r.pipeline_type),
      isolated: r.isolated === 1,
      patchsets: parseJsonColumn(storedStringList, String(r.patchsets_json), `cohorts[${id}].patchsets_json`),
      status: String(r.status),
      createdAt: iso(r.created_at_ms)!,
      resolvedAt: iso(r.resolved_at_ms),
      secondsSaved: (r.seconds_saved as number | null) ?? null,
      steps: {
        total: Number(r.n_total),
        pending: Number(r.n_pending),
        leased: Number(r.n_leased),
        succeeded: Number(r.n_succeeded),
        failed: Number(r.n_failed),
        fromMemo: Number(r.n_memo),
      },
      peers: Number(r.n_peers),
    };
  }

  private peer(r: Row): unknown {
    const reg = parseJsonColumn(storedRegistration, String(r.registration_json), `peers[${String(r.cohort_id)}/${String(r.peer_id)}].registration_json`);
    return {
      peerId: r.peer_id,
      cohortId: r.cohort_id,
      status: r.status,
      joinedAt: iso(r.joined_at_ms),
      graceEndsAt: iso(r.grace_ends_at_ms),
      repo: reg.repo,
      baseRef: reg.baseRef,
      baseSha: reg.baseSha,
      patchsets: reg.patchsets,
      pipeline: { name: reg.pipelineName, type: reg.pipelineType },
      isolated: reg.isolated,
      cacheId: reg.cacheId,
    };
  }
}
