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
  repos: z.array(z.strictObject({ repo: z.string(), baseRef: z.string() })).optional(),
});

const cancelledBy = z.enum(['admin', 'abandoned']);
const lossWhy = z.enum(['grace-expired', 'bye', 'not-resumed', 'restart']);
const outcomeName = z.enum(['succeeded', 'failed', 'lost', 'aborted']);

/** `steps.fail_cause_json`: a StepFailCause (server/core/causes.ts). */
export const storedStepFailCause = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('attempts-exhausted'), failures: z.number().int(), peerId: z.string(), exitCode: z.number().int().nullable() }),
  z.strictObject({ kind: z.literal('lost-too-often'), lostLeases: z.number().int(), last: lossWhy }),
  z.strictObject({ kind: z.literal('need-failed'), need: z.string() }),
  z.strictObject({ kind: z.literal('cohort-cancelled'), by: cancelledBy }),
  z.strictObject({ kind: z.literal('legacy'), reason: z.string() }),
]);

/** `leases.end_json`: a LeaseEnd. */
export const storedLeaseEnd = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('succeeded') }),
  z.strictObject({ kind: z.literal('failed'), exitCode: z.number().int().nullable() }),
  z.strictObject({ kind: z.literal('lost'), why: lossWhy }),
  z.strictObject({ kind: z.literal('aborted'), why: z.enum(['superseded', 'cancelled']) }),
  z.strictObject({ kind: z.literal('unrecorded'), outcome: outcomeName }),
]);

/** `cohorts.outcome_json`: a CohortOutcome. */
export const storedCohortOutcome = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('succeeded') }),
  z.strictObject({ kind: z.literal('failed'), failedSteps: z.number().int() }),
  z.strictObject({ kind: z.literal('cancelled'), by: cancelledBy }),
]);

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
