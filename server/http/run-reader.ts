import type Database from 'better-sqlite3';
import type { CohortOutcome as StoredOutcome } from '../core/causes.js';
import { parseJsonColumn, storedCohortOutcome, storedRegistration, storedSchemaDef, storedStringList } from '../store/row-schemas.js';

/**
 * What the dashboard, the trace export and `taskshard cohort` read about one
 * run: the cohort, its steps, every lease (each attempt and backup copy), its
 * peers and its event log, all with epoch-millisecond times. A narrow
 * interface so the SQLite reader below can be swapped for the store's typed
 * read model (server/core/store-port.ts) without touching the views.
 */
export interface RunReader {
  /** The run, or null when no such cohort is stored. */
  cohortRun(cohortId: string): CohortRun | null;
  /** Ids of cohorts created at or after `sinceMs`, newest first (at most `limit`). */
  recentCohortIds(sinceMs: number, limit: number): string[];
  /** How the cohort ended, as the core recorded it; null while open or when unknown. */
  storedOutcome(cohortId: string): StoredOutcome | null;
  /** The cohort's repo, or null when no such cohort is stored. */
  repoOf(cohortId: string): string | null;
  /** Peers with a live connection or in their grace period, newest first (at most `limit`). */
  livePeers(limit: number): LivePeer[];
}

export interface LivePeer {
  readonly peerId: string;
  readonly cohortId: string;
  readonly status: string;
  readonly joinedAtMs: number;
  readonly repo: string;
  readonly baseRef: string;
  readonly changeRef: string | null;
  readonly pipelineName: string;
}

export interface RunCohort {
  readonly cohortId: string;
  readonly schemaId: string;
  readonly repo: string;
  readonly baseRef: string;
  readonly pipelineType: string;
  readonly patchsets: readonly string[];
  readonly status: string;
  readonly createdAtMs: number;
  readonly resolvedAtMs: number | null;
  readonly secondsSaved: number | null;
  readonly universe: string;
  /** How it ended, as the core recorded it (`cohorts.outcome_json`); null while open. */
  readonly storedOutcome: StoredOutcome | null;
}

export interface RunStep {
  readonly stepId: string;
  readonly target: string;
  readonly needs: readonly string[];
  readonly estimateSec: number | null;
  /** null when the step row was never written (cannot happen for a stored cohort, kept honest). */
  readonly status: string | null;
  readonly attempts: number;
  readonly builtBy: string | null;
  readonly fromMemo: boolean;
  readonly durationMs: number | null;
  readonly failReason: string | null;
  readonly failPeerId: string | null;
  readonly failExitCode: number | null;
  readonly failLogTail: string | null;
  readonly resolvedAtMs: number | null;
}

export interface RunLease {
  readonly leaseId: string;
  readonly stepId: string;
  readonly peerId: string;
  readonly attempt: number;
  readonly backup: boolean;
  readonly startedAtMs: number;
  readonly endedAtMs: number | null;
  /** null while the lease is live. */
  readonly outcome: 'succeeded' | 'failed' | 'lost' | 'aborted' | null;
}

export interface RunPeer {
  readonly peerId: string;
  readonly status: string;
  readonly joinedAtMs: number;
  readonly pipelineName: string;
  readonly changeRef: string | null;
}

export interface RunEvent {
  readonly atMs: number;
  readonly kind: string;
  readonly stepId: string | null;
  readonly peerId: string | null;
  readonly detail: string | null;
}

export interface CohortRun {
  readonly cohort: RunCohort;
  /** In schema order. */
  readonly steps: readonly RunStep[];
  /** In grant order. */
  readonly leases: readonly RunLease[];
  /** In join order. */
  readonly peers: readonly RunPeer[];
  /** In commit order. */
  readonly events: readonly RunEvent[];
}

type Row = Record<string, unknown>;
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const leaseOutcomes = new Set(['succeeded', 'failed', 'lost', 'aborted']);

function outcomeOf(row: Row, cohortId: string): StoredOutcome | null {
  const json = str(row.outcome_json);
  return json === null ? null : parseJsonColumn(storedCohortOutcome, json, `cohorts[${cohortId}].outcome_json`);
}

/** Reads runs straight from the authority's SQLite database (committed state, history included). */
export class SqliteRunReader implements RunReader {
  constructor(private readonly db: Database.Database) {}

  recentCohortIds(sinceMs: number, limit: number): string[] {
    const rows = this.db.prepare('SELECT cohort_id FROM cohorts WHERE created_at_ms >= ? ORDER BY created_at_ms DESC, cohort_id DESC LIMIT ?').all(sinceMs, limit) as Row[];
    return rows.map((r) => String(r.cohort_id));
  }

  repoOf(cohortId: string): string | null {
    const row = this.db.prepare('SELECT repo FROM cohorts WHERE cohort_id = ?').get(cohortId) as Row | undefined;
    return row ? String(row.repo) : null;
  }

  storedOutcome(cohortId: string): StoredOutcome | null {
    const row = this.db.prepare('SELECT outcome_json FROM cohorts WHERE cohort_id = ?').get(cohortId) as Row | undefined;
    return row ? outcomeOf(row, cohortId) : null;
  }

  livePeers(limit: number): LivePeer[] {
    const rows = this.db.prepare("SELECT * FROM peers WHERE status IN ('connected', 'disconnected') ORDER BY joined_at_ms DESC LIMIT ?").all(limit) as Row[];
    return rows.map((r) => {
      const where = `peers[${String(r.cohort_id)}/${String(r.peer_id)}].registration_json`;
      const reg = parseJsonColumn(storedRegistration, String(r.registration_json), where);
      return {
        peerId: String(r.peer_id),
        cohortId: String(r.cohort_id),
        status: String(r.status),
        joinedAtMs: Number(r.joined_at_ms),
        repo: reg.repo,
        baseRef: reg.baseRef,
        changeRef: reg.changeRef,
        pipelineName: reg.pipelineName,
      };
    });
  }

  cohortRun(cohortId: string): CohortRun | null {
    const c = this.db.prepare('SELECT * FROM cohorts WHERE cohort_id = ?').get(cohortId) as Row | undefined;
    if (!c) return null;
    const schema = parseJsonColumn(storedSchemaDef, String(c.schema_json), `cohorts[${cohortId}].schema_json`);
    const cohort: RunCohort = {
      cohortId,
      schemaId: String(c.schema_id),
      repo: String(c.repo),
      baseRef: String(c.base_ref),
      pipelineType: String(c.pipeline_type),
      patchsets: parseJsonColumn(storedStringList, String(c.patchsets_json), `cohorts[${cohortId}].patchsets_json`),
      status: String(c.status),
      createdAtMs: Number(c.created_at_ms),
      resolvedAtMs: num(c.resolved_at_ms),
      secondsSaved: num(c.seconds_saved),
      universe: schema.universe,
      storedOutcome: outcomeOf(c, cohortId),
    };
    const stepRows = new Map((this.db.prepare('SELECT * FROM steps WHERE cohort_id = ?').all(cohortId) as Row[]).map((r) => [String(r.step_id), r]));
    const steps = schema.steps.map((def): RunStep => {
      const r = stepRows.get(def.id) ?? {};
      return {
        stepId: def.id,
        target: def.target,
        needs: def.needs,
        estimateSec: def.estimateSec ?? null,
        status: str(r.status),
        attempts: Number(r.attempts ?? 0),
        builtBy: str(r.built_by),
        fromMemo: r.from_memo === 1,
        durationMs: num(r.duration_ms),
        failReason: str(r.fail_reason),
        failPeerId: str(r.fail_peer_id),
        failExitCode: num(r.fail_exit_code),
        failLogTail: str(r.fail_log_tail),
        resolvedAtMs: num(r.resolved_at_ms),
      };
    });
    const leases = (this.db.prepare('SELECT * FROM leases WHERE cohort_id = ? ORDER BY started_at_ms, rowid').all(cohortId) as Row[]).map((r): RunLease => {
      const outcome = str(r.outcome);
      if (outcome !== null && !leaseOutcomes.has(outcome)) throw new Error(`corrupt database: leases[${String(r.lease_id)}].outcome is "${outcome}"`);
      return {
        leaseId: String(r.lease_id),
        stepId: String(r.step_id),
        peerId: String(r.peer_id),
        attempt: Number(r.attempt),
        backup: r.backup === 1,
        startedAtMs: Number(r.started_at_ms),
        endedAtMs: num(r.ended_at_ms),
        outcome: outcome as RunLease['outcome'],
      };
    });
    const peers = (this.db.prepare('SELECT * FROM peers WHERE cohort_id = ? ORDER BY joined_at_ms, rowid').all(cohortId) as Row[]).map((r): RunPeer => {
      const reg = parseJsonColumn(storedRegistration, String(r.registration_json), `peers[${cohortId}/${String(r.peer_id)}].registration_json`);
      return { peerId: String(r.peer_id), status: String(r.status), joinedAtMs: Number(r.joined_at_ms), pipelineName: reg.pipelineName, changeRef: reg.changeRef };
    });
    const events = (this.db.prepare('SELECT * FROM events WHERE cohort_id = ? ORDER BY id').all(cohortId) as Row[]).map(
      (r): RunEvent => ({ atMs: Number(r.at_ms), kind: String(r.kind), stepId: str(r.step_id), peerId: str(r.peer_id), detail: str(r.detail) }),
    );
    return { cohort, steps, leases, peers, events };
  }
}
