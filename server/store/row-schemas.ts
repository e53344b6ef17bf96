import { z } from 'zod';
import { limits } from '../../shared/limits.js';

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

/** Validates one row read back, throwing an error that names table, key and column. */
export function parseRow<T>(schema: z.ZodType<T>, row: unknown, where: string): T {
  const parsed = schema.safeParse(row);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0];
  throw new Error(`corrupt database: ${where}${first && first.path.length > 0 ? `.${first.path.join('.')}` : ''}: ${first ? first.message : 'invalid row'}`);
}

const int = z.number().int();
const flag = z.union([z.literal(0), z.literal(1)]).transform((v) => v === 1);
const text = z.string();

/** Columns of the `cohorts` table as SQLite returns them. */
export const cohortRowSchema = z.object({
  cohort_id: text,
  repo: text,
  base_ref: text,
  cache_id: text,
  pipeline_type: z.enum(['independent', 'dependent']),
  isolated: flag,
  schema_id: text,
  schema_json: text,
  digest: text,
  base_sha: text.nullable(),
  cohort_key: text.nullable(),
  patchsets_json: text,
  status: z.enum(['open', 'complete', 'cancelled']),
  created_at_ms: int,
  resolved_at_ms: int.nullable(),
  last_activity_ms: int,
  seconds_saved: z.number().nullable(),
  outcome_json: text.nullable(),
});

export const stepRowSchema = z.object({
  cohort_id: text,
  step_id: text,
  status: z.enum(['pending', 'leased', 'succeeded', 'failed', 'unshared']),
  attempts: int.min(0),
  failures: int.min(0),
  lost_leases: int.min(0),
  failed_on_json: text,
  built_by: text.nullable(),
  from_memo: flag,
  duration_ms: int.nullable(),
  fail_reason: text.nullable(),
  fail_cause_json: text.nullable(),
  fail_peer_id: text.nullable(),
  fail_exit_code: int.nullable(),
  fail_log_tail: text.nullable(),
  resolved_at_ms: int.nullable(),
});

export const leaseRowSchema = z.object({
  lease_id: text,
  cohort_id: text,
  step_id: text,
  peer_id: text,
  attempt: int.min(1),
  backup: flag,
  started_at_ms: int,
  ended_at_ms: int.nullable(),
  outcome: z.enum(['succeeded', 'failed', 'lost', 'aborted']).nullable(),
  end_json: text.nullable(),
});

export const peerRowSchema = z.object({
  cohort_id: text,
  peer_id: text,
  token_hash: text,
  registration_json: text,
  resumable: flag,
  status: z.enum(['connected', 'disconnected', 'gone', 'left']),
  joined_at_ms: int,
  grace_ends_at_ms: int.nullable(),
});

export const memoRowSchema = z.object({
  memo_key: text,
  step_id: text,
  cohort_id: text,
  peer_id: text.nullable(),
  duration_ms: int.nullable(),
  created_at_ms: int,
  expires_at_ms: int,
});

export const durationRowSchema = z.object({ duration_key: text, avg_ms: z.number(), samples: int.min(0) });

export const eventRowSchema = z.object({
  id: int.min(1),
  cohort_id: text,
  at_ms: int,
  kind: text,
  step_id: text.nullable(),
  peer_id: text.nullable(),
  detail: text.nullable(),
});

export type CohortRow = z.infer<typeof cohortRowSchema>;
export type StepRow = z.infer<typeof stepRowSchema>;
export type LeaseRow = z.infer<typeof leaseRowSchema>;
export type PeerRow = z.infer<typeof peerRowSchema>;
export type EventRow = z.infer<typeof eventRowSchema>;
