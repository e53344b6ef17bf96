import { z } from 'zod';
import { limits } from '../../shared/limits.js';
import { rowChecker, type ColumnSpec, type RowChecker } from './row-columns.js';

/**
 * JSON read back from SQLite is validated like any other input: a corrupted
 * or hand-edited database fails loudly at start-up, naming table, key and field.
 */

export const storedSchemaDef = z.strictObject({
  id: z.string().min(1).max(limits.maxIdLength),
  universe: z.string().min(1),
  steps: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(limits.maxIdLength),
        target: z.string().min(1),
        needs: z.array(z.string()),
        estimateSec: z.number().positive().optional(),
        requires: z.array(z.string()).optional(),
      }),
    )
    .min(1),
});

export const storedStringList = z.array(z.string());

export const storedRegistration = z.strictObject({
  repo: z.string(),
  baseRef: z.string(),
  baseSha: z.string().nullable(),
  patchsets: z.array(z.string()),
  changeRef: z.string().nullable(),
  pipelineName: z.string(),
  pipelineType: z.enum(['independent', 'dependent']),
  isolated: z.boolean(),
  cacheId: z.string(),
  cohortKey: z.string().nullable().optional(),
  repos: z.array(z.strictObject({ repo: z.string(), baseRef: z.string() })).optional(),
  labels: z.array(z.string()).optional(),
  // Added with hello.ciJobUrl: rows written before it have none (no migration: the column is JSON).
  ciJobUrl: z.string().optional(),
});

/** The typed causes' JSON columns hold exactly what the read model hands out (server/core/read-model.ts). */
export {
  cohortOutcomeView as storedCohortOutcome,
  leaseEndView as storedLeaseEnd,
  stepFailCauseView as storedStepFailCause,
  unsharedCauseView as storedUnsharedCause,
} from '../core/read-model.js';

/** Parses a JSON column, throwing an error that names where the bad value is. */
export function parseJsonColumn<T>(schema: z.ZodType<T>, text: string, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`corrupt database: ${where} is not JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new Error(`corrupt database: ${where}: ${first ? `${first.path.join('.')} ${first.message}` : 'invalid'}`);
  }
  return parsed.data;
}

/**
 * A JSON column whose values repeat from row to row (every cohort of a
 * monorepo stores the same schema; the peers of a cohort, the same
 * registration): each distinct text is parsed and validated once and the
 * result shared, read-only, by every row that holds it. Remembers up to
 * `maxEntries` texts (then starts over), so memory stays bounded.
 */
export function repeatedJsonColumn<T>(schema: z.ZodType<T>, maxEntries = 1024): (text: string, where: string) => T {
  const seen = new Map<string, T>();
  return (text, where) => {
    const known = seen.get(text);
    if (known !== undefined) return known;
    const parsed = parseJsonColumn(schema, text, where);
    if (seen.size >= maxEntries) seen.clear();
    seen.set(text, parsed);
    return parsed;
  };
}

/**
 * Validates one row read back, throwing an error that names table, key and
 * column: with a column check (row-columns.ts: the tables the scheduler
 * loads at start) or a zod schema (one-off rows such as the stats).
 */
export function parseRow<T>(schema: z.ZodType<T> | RowChecker<T>, row: unknown, where: string): T {
  if (!(schema instanceof z.ZodType)) return schema.check(row, where);
  const parsed = schema.safeParse(row);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0];
  throw new Error(`corrupt database: ${where}${first && first.path.length > 0 ? `.${first.path.join('.')}` : ''}: ${first ? first.message : 'invalid row'}`);
}

/** Columns of the `cohorts` table as the database returns them. */
export const cohortColumns = {
  cohort_id: 'text',
  repo: 'text',
  base_ref: 'text',
  cache_id: 'text',
  pipeline_type: { oneOf: ['independent', 'dependent'] },
  isolated: 'flag',
  schema_id: 'text',
  digest: 'text',
  base_sha: 'text?',
  cohort_key: 'text?',
  patchsets_json: 'text',
  status: { oneOf: ['open', 'complete', 'cancelled'] },
  created_at_ms: 'int',
  resolved_at_ms: 'int?',
  last_activity_ms: 'int',
  seconds_saved: 'number?',
  outcome_json: 'text?',
} as const satisfies ColumnSpec;
/** A cohort row as restored: with its schema (SQLite keeps it in `cohort_schemas`, PostgreSQL on the row). */
export const cohortRowSchema = rowChecker({ ...cohortColumns, schema_json: 'text' } as const);

export const stepRowSchema = rowChecker({
  cohort_id: 'text',
  step_id: 'text',
  status: { oneOf: ['pending', 'leased', 'succeeded', 'failed', 'unshared'] },
  attempts: 'count',
  failures: 'count',
  lost_leases: 'count',
  failed_on_json: 'text',
  built_by: 'text?',
  from_memo: 'flag',
  duration_ms: 'int?',
  fail_reason: 'text?',
  fail_cause_json: 'text?',
  fail_peer_id: 'text?',
  fail_exit_code: 'int?',
  fail_log_tail: 'text?',
  resolved_at_ms: 'int?',
} as const);

export const leaseRowSchema = rowChecker({
  lease_id: 'text',
  cohort_id: 'text',
  step_id: 'text',
  peer_id: 'text',
  attempt: 'positive',
  backup: 'flag',
  started_at_ms: 'int',
  ended_at_ms: 'int?',
  outcome: { oneOf: ['succeeded', 'failed', 'lost', 'aborted'], nullable: true },
  end_json: 'text?',
} as const);

export const peerRowSchema = rowChecker({
  cohort_id: 'text',
  peer_id: 'text',
  token_hash: 'text',
  registration_json: 'text',
  resumable: 'flag',
  status: { oneOf: ['connected', 'disconnected', 'gone', 'left'] },
  joined_at_ms: 'int',
  grace_ends_at_ms: 'int?',
} as const);

export const memoRowSchema = rowChecker({
  memo_key: 'text',
  step_id: 'text',
  cohort_id: 'text',
  peer_id: 'text?',
  duration_ms: 'int?',
  created_at_ms: 'int',
  expires_at_ms: 'int',
} as const);

export const durationRowSchema = rowChecker({ duration_key: 'text', avg_ms: 'number', samples: 'count' } as const);

export const eventRowSchema = rowChecker({
  id: 'positive',
  cohort_id: 'text',
  at_ms: 'int',
  kind: 'text',
  step_id: 'text?',
  peer_id: 'text?',
  detail: 'text?',
} as const);

type Checked<C> = C extends RowChecker<infer T> ? T : never;
export type CohortRow = Checked<typeof cohortRowSchema>;
export type StepRow = Checked<typeof stepRowSchema>;
export type LeaseRow = Checked<typeof leaseRowSchema>;
export type PeerRow = Checked<typeof peerRowSchema>;
export type EventRow = Checked<typeof eventRowSchema>;
