import { z } from 'zod';
import { cacheEvidenceView, type CacheEvidenceView } from '../core/read-model.js';
import { parseJsonColumn, parseRow, storedStringList } from './row-schemas.js';

/**
 * The `cache_evidence` table (migration 5 on both stores): one row per peer and cohort, replaced
 * by a later report of the same peer, deleted with its cohort row (ON DELETE CASCADE). Both stores
 * use the same statements (positional parameters written `$n`, in order; {@link sqliteText} turns
 * them into SQLite's `?`) and read rows back through the same schema.
 */
export const cacheEvidenceSql = {
  upsert: `INSERT INTO cache_evidence (cohort_id, peer_id, reported_at_ms, tool, hits, misses, missed_steps_json, source)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (cohort_id, peer_id) DO UPDATE SET reported_at_ms = excluded.reported_at_ms, tool = excluded.tool,
             hits = excluded.hits, misses = excluded.misses, missed_steps_json = excluded.missed_steps_json, source = excluded.source`,
  ofCohort: 'SELECT * FROM cache_evidence WHERE cohort_id = $1 ORDER BY reported_at_ms, peer_id',
} as const;

/** A statement for better-sqlite3, which binds `?` by position. */
export const sqliteText = (text: string): string => text.replace(/\$\d+/g, '?');

const n = z.number().int().min(0);
const cacheEvidenceRow = z.object({
  cohort_id: z.string(),
  peer_id: z.string(),
  reported_at_ms: z.number().int(),
  tool: z.string(),
  hits: n,
  misses: n,
  missed_steps_json: z.string(),
  source: z.string(),
});

/** The upsert's parameters, in order; the evidence is validated first (a bad one is a bug of the caller). */
export function cacheEvidenceParams(cohortId: string, evidence: CacheEvidenceView): (string | number)[] {
  const e = cacheEvidenceView.parse(evidence);
  return [cohortId, e.peerId, e.reportedAtMs, e.tool, e.hits, e.misses, JSON.stringify(e.missedSteps), e.source];
}

export function cacheEvidenceFromRow(raw: unknown): CacheEvidenceView {
  const r = parseRow(cacheEvidenceRow, raw, 'cache_evidence');
  const where = `cache_evidence[${r.cohort_id}/${r.peer_id}]`;
  return parseRow(
    cacheEvidenceView,
    {
      peerId: r.peer_id,
      reportedAtMs: r.reported_at_ms,
      tool: r.tool,
      hits: r.hits,
      misses: r.misses,
      missedSteps: parseJsonColumn(storedStringList, r.missed_steps_json, `${where}.missed_steps_json`),
      source: r.source,
    },
    where,
  );
}
