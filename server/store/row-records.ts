import { describeStepFailure, describeUnshared, type StepFailCause, type UnsharedCause } from '../core/causes.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import type { CohortRecord, DurationRecord, LeaseRecord, MemoRecord, PeerRecord, StepRecord } from '../core/records.js';
import {
  cohortRowSchema,
  durationRowSchema,
  leaseRowSchema,
  memoRowSchema,
  parseJsonColumn,
  parseRow,
  peerRowSchema,
  repeatedJsonColumn,
  stepRowSchema,
  storedCohortOutcome,
  storedLeaseEnd,
  storedRegistration,
  storedSchemaDef,
  storedStepFailCause,
  storedStringList,
  storedUnsharedCause,
} from './row-schemas.js';

/**
 * A step's cause column (`fail_cause_json`) holds why it was resolved without a success: its
 * StepFailCause when failed, its UnsharedCause when unshared (`fail_reason` renders either).
 */
export function stepCausesFromColumn(
  status: string,
  causeJson: string | null,
  where: string,
): { failCause: StepFailCause | null; unsharedCause: UnsharedCause | null } {
  if (causeJson === null) return { failCause: null, unsharedCause: null };
  if (status === 'unshared') return { failCause: null, unsharedCause: parseJsonColumn(storedUnsharedCause, causeJson, where) };
  return { failCause: parseJsonColumn(storedStepFailCause, causeJson, where), unsharedCause: null };
}

/** The `fail_cause_json` and `fail_reason` values of a step record (see {@link stepCausesFromColumn}). */
export function stepCauseColumns(r: StepRecord): { causeJson: string | null; reason: string | null } {
  if (r.failCause !== null) return { causeJson: JSON.stringify(r.failCause), reason: describeStepFailure(r.failCause) };
  if (r.unsharedCause) return { causeJson: JSON.stringify(r.unsharedCause), reason: describeUnshared(r.unsharedCause) };
  return { causeJson: null, reason: null };
}

const schemaJson = new WeakMap<SchemaDef, string>();

/**
 * A schema's `schema_json` column, turned into text once per schema object: the cohorts of one
 * schema content share the object the hello's schema check made (server/http/schema-check-cache.ts),
 * and records never change their values in place (server/core/records.ts), so the text stays
 * true (53 KB for 1,000 steps).
 */
export function schemaJsonOf(schema: SchemaDef): string {
  let text = schemaJson.get(schema);
  if (text === undefined) schemaJson.set(schema, (text = JSON.stringify(schema)));
  return text;
}

/**
 * Rows read back from the database become the core's records here, each
 * validated first (column types, enums, JSON columns), so a corrupt or
 * hand-edited database fails at load naming table, key and column.
 */

const schemaOfColumn = repeatedJsonColumn(storedSchemaDef);
const registrationOfColumn = repeatedJsonColumn(storedRegistration);
const stringListOfColumn = repeatedJsonColumn(storedStringList);
const cohortOutcomeOfColumn = repeatedJsonColumn(storedCohortOutcome);
const leaseEndOfColumn = repeatedJsonColumn(storedLeaseEnd);

export function cohortFromRow(raw: unknown): CohortRecord {
  const r = parseRow(cohortRowSchema, raw, `cohorts[${keyOf(raw, 'cohort_id')}]`);
  const where = `cohorts[${r.cohort_id}]`;
  return {
    cohortId: r.cohort_id,
    repo: r.repo,
    baseRef: r.base_ref,
    cacheId: r.cache_id,
    pipelineType: r.pipeline_type,
    isolated: r.isolated,
    schema: schemaOfColumn(r.schema_json, `${where}.schema_json`),
    digest: r.digest,
    baseSha: r.base_sha,
    cohortKey: r.cohort_key,
    patchsets: stringListOfColumn(r.patchsets_json, `${where}.patchsets_json`),
    status: r.status,
    createdAtMs: r.created_at_ms,
    resolvedAtMs: r.resolved_at_ms,
    lastActivityMs: r.last_activity_ms,
    secondsSaved: r.seconds_saved,
    outcome: r.outcome_json === null ? null : cohortOutcomeOfColumn(r.outcome_json, `${where}.outcome_json`),
  };
}

export function stepFromRow(raw: unknown): StepRecord {
  const r = parseRow(stepRowSchema, raw, `steps[${keyOf(raw, 'cohort_id')}/${keyOf(raw, 'step_id')}]`);
  const { failCause, unsharedCause } = stepCausesFromColumn(r.status, r.fail_cause_json, `steps[${r.cohort_id}/${r.step_id}].fail_cause_json`);
  return {
    cohortId: r.cohort_id,
    stepId: r.step_id,
    status: r.status,
    attempts: r.attempts,
    failures: r.failures,
    lostLeases: r.lost_leases,
    failedOn: stringListOfColumn(r.failed_on_json, `steps[${r.cohort_id}/${r.step_id}].failed_on_json`),
    builtBy: r.built_by,
    fromMemo: r.from_memo,
    durationMs: r.duration_ms,
    failCause,
    // Present only on an unshared step, as the core writes it.
    ...(unsharedCause === null ? {} : { unsharedCause }),
    failPeerId: r.fail_peer_id,
    failExitCode: r.fail_exit_code,
    failLogTail: r.fail_log_tail,
    resolvedAtMs: r.resolved_at_ms,
  };
}

export function leaseFromRow(raw: unknown): LeaseRecord {
  const r = parseRow(leaseRowSchema, raw, `leases[${keyOf(raw, 'lease_id')}]`);
  return {
    leaseId: r.lease_id,
    cohortId: r.cohort_id,
    stepId: r.step_id,
    peerId: r.peer_id,
    attempt: r.attempt,
    backup: r.backup,
    startedAtMs: r.started_at_ms,
    endedAtMs: r.ended_at_ms,
    end: r.end_json === null ? null : leaseEndOfColumn(r.end_json, `leases[${r.lease_id}].end_json`),
  };
}

export function peerFromRow(raw: unknown): PeerRecord {
  const r = parseRow(peerRowSchema, raw, `peers[${keyOf(raw, 'cohort_id')}/${keyOf(raw, 'peer_id')}]`);
  return {
    peerId: r.peer_id,
    cohortId: r.cohort_id,
    tokenHash: r.token_hash,
    registration: registrationOfColumn(r.registration_json, `peers[${r.cohort_id}/${r.peer_id}].registration_json`),
    resumable: r.resumable,
    status: r.status,
    joinedAtMs: r.joined_at_ms,
    graceEndsAtMs: r.grace_ends_at_ms,
  };
}

export function memoFromRow(raw: unknown): MemoRecord {
  const r = parseRow(memoRowSchema, raw, `memos[${keyOf(raw, 'memo_key')}]`);
  return {
    memoKey: r.memo_key,
    stepId: r.step_id,
    cohortId: r.cohort_id,
    peerId: r.peer_id,
    durationMs: r.duration_ms,
    createdAtMs: r.created_at_ms,
    expiresAtMs: r.expires_at_ms,
  };
}

export function durationFromRow(raw: unknown): DurationRecord {
  const r = parseRow(durationRowSchema, raw, `durations[${keyOf(raw, 'duration_key')}]`);
  return { durationKey: r.duration_key, avgMs: r.avg_ms, samples: r.samples };
}

/** A row's key for error messages, before the row is known to be valid. */
export function keyOf(raw: unknown, column: string): string {
  const value = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)[column] : undefined;
  return typeof value === 'string' ? value : '?';
}
