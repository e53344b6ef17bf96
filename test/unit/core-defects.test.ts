import { describe, expect, it } from 'vitest';
import { CoreHarness } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';

/**
 * Defect 1 of issue 10: a partial admin retry hung the cohort. Schema z, x, y,
 * d (needs x and y); x and y fail; an admin retries only x; x and z succeed.
 * `d` was reopened although it still needs the failed `y`: the cohort stayed
 * open with nothing running, its peers got `wait` forever and the sweep never
 * abandoned it.
 */
describe('defect 1: a partial admin retry', () => {
  const finished = new Set<string>();
  function scenario(): CoreHarness {
    finished.clear();
    const h = new CoreHarness(dagSchema({ z: [], x: [], y: [], d: ['x', 'y'] }), { maxFailures: 1 });
    h.hello('p1');
    h.hello('p2');
    h.hello('p3');
    // z, x and y go out (schema order among equal priorities: x and y first, they lead to d).
    const lease = (stepId: string) => {
      for (const p of ['p1', 'p2', 'p3']) {
        const a = h.lastAssign(p);
        if (a?.stepId === stepId) return { peer: p, leaseId: a.leaseId };
      }
      throw new Error(`no lease for ${stepId}`);
    };
    const x = lease('x');
    const y = lease('y');
    h.finish(x.peer, x.leaseId, 'x', false);
    h.finish(y.peer, y.leaseId, 'y', false);
    finished.add(x.leaseId).add(y.leaseId);
    expect(h.handle({ kind: 'retry', cohortId: 'c1', stepId: 'x' }).admin).toEqual({ ok: true });
    return h;
  }

  it('keeps d failed while its other need y is still failed, and the cohort completes', () => {
    const h = scenario();
    for (let i = 0; i < 10; i++) {
      for (const p of ['p1', 'p2', 'p3']) {
        const a = h.lastAssign(p);
        if (!a || finished.has(a.leaseId)) continue;
        finished.add(a.leaseId);
        if (h.sent(p).some((m) => m.type === 'abort' && m.leaseId === a.leaseId)) continue;
        h.finish(p, a.leaseId, a.stepId, true);
      }
    }
    for (const p of ['p1', 'p2', 'p3']) {
      expect(h.sent(p).find((m) => m.type === 'complete'), `${p} is told complete`).toMatchObject({ type: 'complete', outcome: 'failed' });
    }
    const stepRows = new Map(h.writes.flatMap((w) => (w.table === 'step' ? [[w.row.stepId, w.row] as const] : [])));
    expect(stepRows.get('d')).toMatchObject({ status: 'failed', failCause: { kind: 'need-failed', need: 'y' } });
    expect(stepRows.get('x')).toMatchObject({ status: 'succeeded' });
    expect(h.scheduler.counts()).toMatchObject({ cohortsOpen: 0, leasesLive: 0 });
  });

  it('reopens d once the admin retries y as well', () => {
    const h = scenario();
    const out = h.handle({ kind: 'retry', cohortId: 'c1', stepId: 'y' });
    expect(out.admin).toEqual({ ok: true });
    expect(out.writes.flatMap((w) => (w.table === 'step' ? [[w.row.stepId, w.row.status]] : []))).toContainEqual(['d', 'pending']);
  });
});
