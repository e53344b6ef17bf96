import { describe, expect, it } from 'vitest';
import { defaultCoreConfig } from '../../server/core/core-types.js';
import type { CoreOutput } from '../../server/core/core-types.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/** A cohort every member has left (on purpose) is resolved as abandoned at once; one that may still be finished stays open. */

const cohortRows = (out: CoreOutput) => out.writes.flatMap((w) => (w.table === 'cohort' ? [w.row] : []));
const events = (out: CoreOutput) => out.writes.flatMap((w) => (w.table === 'event' ? [w.row.kind] : []));

describe('abandoning a cohort', () => {
  it('the last member saying bye with work left resolves the cohort as abandoned in the same input', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('a');
    h.hello('b');
    const first = h.bye('a');
    expect(cohortRows(first).filter((c) => c.status !== 'open')).toEqual([]); // b is still there
    const out = h.bye('b');
    expect(cohortRows(out)).toContainEqual(expect.objectContaining({ cohortId: 'c1', status: 'cancelled', resolvedAtMs: h.clock.now(), outcome: { kind: 'cancelled', by: 'abandoned' } }));
    expect(events(out)).toEqual(expect.arrayContaining(['peer.left', 'cohort.cancelled']));
    expect(out.writes.filter((w) => w.table === 'step' && w.row.status === 'failed')).toHaveLength(3);
    expect(h.scheduler.counts()).toMatchObject({ cohortsOpen: 0, leasesLive: 0 });
    // A new peer with the same source state starts a new cohort.
    h.hello('c');
    expect(h.lastAssign('c')!.cohortId).toBe('c2');
  });

  it('a member that is gone (grace over) keeps the cohort open: it may come back; the retention sweep ends it', () => {
    const h = new CoreHarness(flatSchema(2), { cohortRetentionMs: 10 * defaultCoreConfig.leaseGraceMs });
    h.hello('a');
    h.disconnect('a');
    const expired = h.advance(defaultCoreConfig.leaseGraceMs);
    expect(events(expired)).toContain('peer.gone');
    expect(cohortRows(expired).filter((c) => c.status !== 'open')).toEqual([]);
    expect(h.scheduler.counts().cohortsOpen).toBe(1);
    h.hello('a-retry');
    expect(h.lastAssign('a-retry')!.cohortId).toBe('c1'); // the retry joins the same cohort
    h.bye('a-retry');
    expect(h.scheduler.counts().cohortsOpen).toBe(1); // one member left, one is gone: still open
    const swept = h.advance(10 * defaultCoreConfig.leaseGraceMs);
    expect(cohortRows(swept)).toContainEqual(expect.objectContaining({ cohortId: 'c1', status: 'cancelled', outcome: { kind: 'cancelled', by: 'abandoned' } }));
  });

  it('a completed cohort is not touched when its members leave', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('a');
    const a = h.lastAssign('a')!;
    h.finish('a', a.leaseId, a.stepId);
    const out = h.bye('a');
    expect(cohortRows(out).map((c) => c.status)).not.toContain('cancelled');
  });
});
