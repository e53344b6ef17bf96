import { describe, expect, it } from 'vitest';
import { liveBatchOf, touchedCohortIds } from '../../server/http/event-stream.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/**
 * What a commit makes the trend cache forget (`touchedCohortIds`) is the set of cohorts the live
 * batch for browsers names (`liveBatchOf`), without grouping the writes by cohort; the authority
 * calls neither when nobody listens and no trend is cached (app.ts).
 */
describe('the cohorts a committed batch touched', () => {
  it('are the cohorts of its live batch, for every output of a run over several cohorts', () => {
    const h = new CoreHarness(flatSchema(3), { leaseGraceMs: 1_000 });
    const outputs = [];
    for (const [p, change] of [['a1', 1], ['a2', 1], ['b1', 2], ['c1', 3]] as const) outputs.push(h.hello(p, { reg: { patchsets: [`refs/changes/${change}`] } }));
    for (const p of ['a1', 'b1', 'c1', 'a2']) {
      const a = h.lastAssign(p)!;
      outputs.push(h.finish(p, a.leaseId, a.stepId));
    }
    outputs.push(h.disconnect('b1'));
    outputs.push(h.advance(1_000)); // b1's grace ends: a tick touching its cohort
    outputs.push(h.bye('c1'));
    let nonEmpty = 0;
    for (const out of outputs) {
      const expected = liveBatchOf(out.writes).cohorts.map((c) => c.cohortId);
      expect([...touchedCohortIds(out.writes)]).toEqual(expected);
      if (expected.length > 0) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(8);
  });
});
