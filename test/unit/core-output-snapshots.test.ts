import { describe, expect, it } from 'vitest';
import { CoreHarness } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

describe('the core hands out frozen snapshots of the rows an input changed', () => {
  it('a later input does not change an earlier output, and every written row is frozen', () => {
    const h = new CoreHarness(flatSchema(2));
    const joined = h.hello('p1');
    const lease = h.lastAssign('p1')!;
    const grantedStep = joined.writes.find((w) => w.table === 'step' && w.row.stepId === lease.stepId);
    const grantedLease = joined.writes.find((w) => w.table === 'lease' && w.row.leaseId === lease.leaseId);
    expect(grantedStep?.table === 'step' && grantedStep.row.status).toBe('leased');
    const finished = h.finish('p1', lease.leaseId, lease.stepId);
    // The same rows, written again by the finish in their new state; the first output still says what it said.
    expect(finished.writes).toContainEqual({ table: 'step', row: expect.objectContaining({ stepId: lease.stepId, status: 'succeeded' }) });
    expect(grantedStep?.table === 'step' && grantedStep.row.status).toBe('leased');
    expect(grantedLease?.table === 'lease' && grantedLease.row.end).toBeNull();
    for (const w of [...joined.writes, ...finished.writes]) {
      expect(Object.isFrozen(w)).toBe(true);
      // Copies of live records (memo and duration rows are frozen state objects themselves; event rows are built per input).
      if (w.table === 'cohort' || w.table === 'step' || w.table === 'peer' || w.table === 'lease') expect(Object.isFrozen(w.row)).toBe(true);
    }
  });
});
