import type { CacheEvidenceView, CohortDetailView, CohortFilter, CohortView, PeerFilter, PeerView, ReadModel, StatsView } from '../../core/read-model.js';
import { cacheEvidenceFromRow, cacheEvidenceSql } from '../cache-evidence-rows.js';
import { parseJsonColumn, parseRow, storedSchemaDef } from '../row-schemas.js';
import { checkedLimit, cohortViewFrom, outcomeMatch, eventViewFrom, leaseViewFrom, peerViewFrom, pendingLeasedSql, statsRow, stepViewsFrom, timelineOf } from '../sqlite-read-model.js';
import type { Sql } from './pg-connection.js';

/**
 * The read model on PostgreSQL: the same typed views as the SQLite one, from
 * the same column shapes (the row schemas validate both). A cohort's detail is
 * read in one REPEATABLE READ transaction, so its parts agree.
 */
const cohortSelect = `
  SELECT c.*,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id) AS n_total,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'pending') - ${pendingLeasedSql} AS n_pending,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'leased') + ${pendingLeasedSql} AS n_leased,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'succeeded') AS n_succeeded,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.status = 'failed') AS n_failed,
    (SELECT count(*) FROM steps s WHERE s.cohort_id = c.cohort_id AND s.from_memo = 1) AS n_memo,
    (SELECT count(*) FROM peers p WHERE p.cohort_id = c.cohort_id) AS n_peers,
    (SELECT coalesce(json_agg(name ORDER BY name), '[]'::json)::text FROM (
       SELECT DISTINCT p.registration_json::jsonb ->> 'pipelineName' AS name FROM peers p WHERE p.cohort_id = c.cohort_id) names) AS pipeline_names_json
  FROM cohorts c`;

export class PgReadModel implements ReadModel {
  constructor(private readonly sql: Sql) {}

  async cacheEvidence(cohortId: string): Promise<CacheEvidenceView[]> {
    return (await this.sql.unsafe(cacheEvidenceSql.ofCohort, [cohortId])).map(cacheEvidenceFromRow);
  }

  async listCohorts(filter: CohortFilter): Promise<CohortView[]> {
    const limit = checkedLimit(filter.limit);
    const match = outcomeMatch(filter.outcome);
    const rows = await this.sql.unsafe(
      `${cohortSelect}
       WHERE ($1::text IS NULL OR c.status = $1::text)
         AND ($2::text IS NULL OR c.repo = $2::text)
         AND ($3::text IS NULL OR c.pipeline_type = $3::text)
         AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM peers p WHERE p.cohort_id = c.cohort_id
                                          AND p.registration_json::jsonb ->> 'pipelineName' = $4::text))
         AND ($5::bigint IS NULL OR c.created_at_ms < $5::bigint
              OR ($8::text IS NOT NULL AND c.created_at_ms = $5::bigint AND c.cohort_id < $8::text))
         AND ($6::bigint IS NULL OR c.created_at_ms >= $6::bigint)
         AND ($9::text IS NULL OR c.outcome_json::jsonb ->> 'kind' = $9::text)
         AND ($10::text IS NULL OR c.outcome_json::jsonb ->> 'by' = $10::text)
       ORDER BY c.created_at_ms DESC, c.cohort_id DESC LIMIT $7::int`,
      [
        filter.status ?? null,
        filter.repo ?? null,
        filter.pipelineType ?? null,
        filter.pipelineName ?? null,
        filter.createdBeforeMs ?? null,
        filter.createdSinceMs ?? null,
        limit,
        filter.beforeCohortId ?? null,
        match.outcomeKind,
        match.cancelledBy,
      ],
    );
    return rows.map(cohortViewFrom);
  }

  async cohortDetail(cohortId: string): Promise<CohortDetailView | null> {
    return this.sql.begin('isolation level repeatable read read only', async (tx) => {
      const [cohortRows, stepRows, leaseRows, peerRows, eventRows] = await Promise.all([
        tx.unsafe(`${cohortSelect} WHERE c.cohort_id = $1`, [cohortId]),
        tx.unsafe('SELECT * FROM steps WHERE cohort_id = $1', [cohortId]),
        tx.unsafe('SELECT * FROM leases WHERE cohort_id = $1 ORDER BY started_at_ms, attempt, lease_id', [cohortId]),
        tx.unsafe('SELECT * FROM peers WHERE cohort_id = $1 ORDER BY joined_at_ms, peer_id', [cohortId]),
        tx.unsafe('SELECT * FROM events WHERE cohort_id = $1 ORDER BY id', [cohortId]),
      ]);
      const row = cohortRows[0];
      if (row === undefined) return null;
      const cohort = cohortViewFrom(row);
      const schema = parseJsonColumn(storedSchemaDef, String((row as Record<string, unknown>)["schema_json"]), `cohorts[${cohortId}].schema_json`);
      const leases = leaseRows.map(leaseViewFrom);
      const steps = stepViewsFrom(cohortId, schema, stepRows, leases);
      return {
        cohort,
        universe: schema.universe,
        steps,
        leases,
        peers: peerRows.map(peerViewFrom),
        timeline: timelineOf(cohortId, eventRows.map(eventViewFrom), leaseRows, leases, steps),
      };
    }) as Promise<CohortDetailView | null>;
  }

  async listPeers(filter: PeerFilter): Promise<PeerView[]> {
    const limit = checkedLimit(filter.limit);
    const rows = await this.sql.unsafe(
      `SELECT * FROM peers
       WHERE ($1::jsonb IS NULL OR status IN (SELECT jsonb_array_elements_text($1::jsonb))) AND ($2::text IS NULL OR cohort_id = $2::text)
       ORDER BY joined_at_ms DESC, peer_id DESC LIMIT $3::int`,
      [filter.statuses === undefined ? null : [...filter.statuses], filter.cohortId ?? null, limit],
    );
    return rows.map(peerViewFrom);
  }

  async stats(): Promise<StatsView> {
    const rows = await this.sql.unsafe(
      `SELECT
        (SELECT count(*) FROM cohorts WHERE status = 'open') AS cohorts_open,
        (SELECT count(*) FROM cohorts WHERE status = 'complete') AS cohorts_complete,
        (SELECT count(*) FROM cohorts WHERE status = 'cancelled') AS cohorts_cancelled,
        (SELECT count(*) FROM steps WHERE status = 'succeeded' AND from_memo = 0) AS steps_succeeded,
        (SELECT count(*) FROM steps WHERE from_memo = 1) AS steps_memo,
        (SELECT count(*) FROM steps WHERE status = 'failed') AS steps_failed,
        (SELECT count(*) FROM steps s JOIN cohorts c USING (cohort_id) WHERE c.status = 'open' AND s.status IN ('pending', 'leased')) AS steps_pending,
        (SELECT count(*) FROM leases) AS leases_granted,
        (SELECT count(*) FROM leases WHERE outcome = 'lost') AS leases_lost,
        (SELECT count(*) FROM leases WHERE backup = 1) AS leases_backups,
        (SELECT count(*) FROM peers WHERE status = 'connected') AS peers_connected,
        (SELECT count(*) FROM peers WHERE status = 'disconnected') AS peers_grace,
        (SELECT coalesce(sum(seconds_saved), 0)::double precision FROM cohorts) AS seconds_saved`,
    );
    const r = parseRow(statsRow, rows[0], 'stats');
    return {
      cohorts: { open: r.cohorts_open, complete: r.cohorts_complete, cancelled: r.cohorts_cancelled },
      steps: { succeeded: r.steps_succeeded, reusedFromMemo: r.steps_memo, failed: r.steps_failed, pending: r.steps_pending },
      leases: { granted: r.leases_granted, lost: r.leases_lost, backups: r.leases_backups },
      peers: { connected: r.peers_connected, inGrace: r.peers_grace },
      secondsSaved: r.seconds_saved,
    };
  }
}
