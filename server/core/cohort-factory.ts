import { Cohort } from './cohort.js';
import type { CoreTx } from './core-tx.js';
import type { HelloInput } from './peer-sessions.js';
import { pendingStepRecord, type CohortRecord, type StepRecord } from './records.js';
import type { SchedulerState } from './scheduler-state.js';
import { memoKey, patchsetSet } from './source-state.js';
import { transitionStep } from './step-status.js';

/**
 * A new cohort for a hello that matched none: its record and one pending step
 * row per schema step, except steps a live memo covers for the joiner's exact
 * source state (succeeded at once, `fromMemo`). Indexed in the scheduler's
 * state before the joiner is added to it.
 */
export function createCohort(host: SchedulerState, tx: CoreTx, input: HelloInput): Cohort {
  const reg = input.registration;
  const record: CohortRecord = {
    cohortId: host.ids.cohortId(),
    repo: reg.repo,
    baseRef: reg.baseRef,
    cacheId: reg.cacheId,
    pipelineType: reg.pipelineType,
    isolated: reg.isolated,
    schema: input.schema,
    digest: input.digest,
    baseSha: reg.baseSha,
    cohortKey: reg.cohortKey ?? null,
    patchsets: patchsetSet(reg.patchsets),
    status: 'open',
    createdAtMs: tx.now,
    resolvedAtMs: null,
    lastActivityMs: tx.now,
    secondsSaved: null,
    outcome: null,
  };
  const steps: StepRecord[] = input.schema.steps.map((def) => pendingStepRecord(record.cohortId, def.id));
  tx.cohort(record);
  tx.createdCohorts.add(record.cohortId);
  tx.event(record.cohortId, 'cohort.created', { detail: `${input.schema.id} ${input.digest}` });
  const siblings = host.matcher.digestSiblings(reg, input.schema.id, input.digest);
  if (siblings.length > 0) {
    const detail = `schema ${input.schema.id} is also in use with digest ${siblings.join(', ')}; peers with different digests never share a cohort`;
    tx.event(record.cohortId, 'schema.digest-differs', { detail });
    tx.notice('schema id seen with different digests', { schemaId: input.schema.id, digest: input.digest, otherDigests: siblings.join(',') });
  }
  steps.forEach((step, i) => {
    tx.step(step);
    const key = memoKey(reg, input.schema.steps[i]!.target);
    const memo = key === null ? undefined : host.memos.get(key);
    if (memo && tx.now < memo.expiresAtMs) {
      // A new row: nothing to undo if the input fails, but the edge is still checked.
      transitionStep(tx.journal, step, 'succeeded');
      tx.journal.set(step, { fromMemo: true, durationMs: memo.durationMs, resolvedAtMs: tx.now });
      tx.event(record.cohortId, 'step.memo', { stepId: step.stepId, detail: `built in cohort ${memo.cohortId}` });
      tx.stat('step.reused');
    }
  });
  const cohort = new Cohort(host, record, steps);
  host.indexCohort(tx, cohort);
  return cohort;
}
