import { describe, expect, it } from 'vitest';
import { describeStepFailure } from '../../server/core/causes.js';
import { defaultCoreConfig } from '../../server/core/core-types.js';
import type { Snapshot, StepRecord } from '../../server/core/records.js';
import { durationKey } from '../../server/core/source-state.js';
import type { CompleteSummary } from '../../shared/protocol.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { CoreHarness, snapshotFromWrites } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';

/**
 * `complete` summaries are made from one member-independent base per cohort completion
 * (summary.ts `summaryBase`), each member adding only its own steps (issue 17). What every member
 * is told must be what the step-by-step walk over every step made before: the reference below is
 * that walk, kept here as the specification, and each member's summary is compared with it whole
 * (key order included, as peers receive it as JSON).
 */

/** The summary as it was made before the shared base: one walk over every step per member. */
function referenceSummary(steps: readonly StepRecord[], peerId: string, estimateMs: (stepId: string) => number, withDurations: boolean, spentSec: number): CompleteSummary {
  const summary: CompleteSummary = { builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0 };
  let savedMs = 0;
  let builtMs = 0;
  let aloneMs = 0;
  for (const step of steps) {
    if (!step.fromMemo) aloneMs += step.durationMs ?? estimateMs(step.stepId);
    if (step.status === 'succeeded') {
      const ms = step.durationMs ?? estimateMs(step.stepId);
      if (step.fromMemo) {
        summary.fromMemo.push(step.stepId);
        savedMs += ms;
      } else if (step.builtBy === peerId) {
        summary.builtHere.push(step.stepId);
        builtMs += ms;
      } else if (step.builtBy !== null) {
        summary.builtByOthers.push(withDurations && step.durationMs !== null ? { stepId: step.stepId, peerId: step.builtBy, durationMs: step.durationMs } : { stepId: step.stepId, peerId: step.builtBy });
        savedMs += ms;
      }
    } else if (step.status === 'failed') {
      summary.failed.push({
        stepId: step.stepId,
        peerId: step.failPeerId,
        exitCode: step.failExitCode,
        reason: step.failCause === null ? 'failed' : describeStepFailure(step.failCause),
        ...(step.failLogTail ? { logTail: step.failLogTail } : {}),
      });
    }
  }
  summary.savedSec = Math.round(savedMs) / 1000;
  summary.builtSec = Math.round(builtMs) / 1000;
  summary.aloneSec = Math.round(aloneMs) / 1000;
  summary.spentSec = spentSec;
  return summary;
}

/** The cohort's steps in schema order and the estimate each would use, from what the core persisted. */
function cohortView(snapshot: Snapshot, cohortId: string, schema: SchemaDef): { steps: StepRecord[]; estimateMs: (stepId: string) => number } {
  const byId = new Map(snapshot.steps.filter((s) => s.cohortId === cohortId).map((s) => [s.stepId, s]));
  const cohort = snapshot.cohorts.find((c) => c.cohortId === cohortId)!;
  const durations = new Map(snapshot.durations.map((d) => [d.durationKey, d.avgMs]));
  return {
    steps: schema.steps.map((def) => byId.get(def.id)!),
    estimateMs: (stepId) => {
      const recorded = durations.get(durationKey(cohort.repo, schema.id, stepId));
      if (recorded !== undefined) return recorded;
      const sec = schema.steps.find((d) => d.id === stepId)!.estimateSec;
      return sec === undefined ? defaultCoreConfig.defaultEstimateMs : sec * 1000;
    },
  };
}

function completeOf(h: CoreHarness, peerId: string): { summary: CompleteSummary; cohortId: string } {
  const m = h.sent(peerId).find((x) => x.type === 'complete');
  if (m?.type !== 'complete') throw new Error(`${peerId} got no complete`);
  return { summary: m.summary, cohortId: m.cohortId };
}

/** Runs the cohort to completion: each member finishes what it is assigned (failing the steps in `fail`), `stepMs` apart. */
function runToCompletion(h: CoreHarness, members: readonly string[], fail: ReadonlySet<string>, stepMs: (stepId: string) => number): void {
  for (let guard = 0; guard < 200; guard++) {
    let progressed = false;
    for (const p of members) {
      const a = h.lastAssign(p);
      if (!a || h.sent(p).some((m) => m.type === 'complete')) continue;
      const lease = h.leaseRow(a.leaseId)!;
      if (lease.end !== null || h.scheduler.dump().leases.find((l) => l.leaseId === a.leaseId)?.end !== null) continue;
      h.finish(p, a.leaseId, a.stepId, !fail.has(a.stepId), { durationMs: stepMs(a.stepId), exitCode: fail.has(a.stepId) ? 3 : 0, logTail: fail.has(a.stepId) ? 'error: boom' : null });
      progressed = true;
    }
    if (!progressed) return;
  }
  throw new Error('the cohort did not complete');
}

describe('complete summaries from one shared base per cohort', () => {
  // e fails (maxFailures 1), so f (needs e) fails too; estimates are fractional for the steps nobody built.
  const schema = dagSchema({ a: [], b: [], c: [], d: ['a'], e: [], f: ['e'], g: [], h: ['b', 'c'] }, { a: 1.5, e: 0.3333, f: 2.71828, g: 4 }, 'shared');

  it('every member, targeted or not, builder or not, is told what the walk over every step told it', () => {
    const h = new CoreHarness(schema, { maxFailures: 1 });
    const members = ['p1', 'p2', 'p3', 'p4', 'p5'];
    const withSha = { baseSha: 'cafe' };
    // A first cohort (same source state, another schema digest) builds a and b: memos for the second one.
    h.hello('m1', { reg: { ...withSha, patchsets: ['refs/changes/1'] }, schema: dagSchema({ a: [], b: [] }, {}, 'shared') });
    for (let i = 0; i < 2; i++) {
      const a = h.lastAssign('m1')!;
      h.finish('m1', a.leaseId, a.stepId, true, { durationMs: 700 + i });
    }
    members.forEach((p, i) => h.hello(p, { targetedUpdates: i % 2 === 0, reg: { ...withSha, patchsets: ['refs/changes/1'] } }));
    runToCompletion(h, members, new Set(['e']), (stepId) => 1000 + stepId.charCodeAt(0));
    const snapshot = h.scheduler.dump();
    for (const [i, p] of members.entries()) {
      const { summary, cohortId } = completeOf(h, p);
      const view = cohortView(snapshot, cohortId, schema);
      const peer = snapshot.peers.find((r) => r.peerId === p)!;
      const spentSec = Math.max(0, Math.round(h.clock.now() - peer.joinedAtMs)) / 1000;
      expect(JSON.stringify(summary)).toBe(JSON.stringify(referenceSummary(view.steps, p, view.estimateMs, i % 2 === 0, spentSec)));
    }
    // The case is not trivial: memo steps, failed steps, several builders, and a member that built nothing or something.
    const all = members.map((p) => completeOf(h, p).summary);
    expect(all[0]!.failed.map((f) => f.stepId)).toEqual(['e', 'f']);
    expect(all[0]!.fromMemo).toEqual(['a', 'b']);
    expect(all.some((s) => s.builtHere.length === 0) || all.every((s) => s.builtHere.length > 0)).toBe(true);
    expect(new Set(all.flatMap((s) => s.builtHere)).size).toBeGreaterThan(1);
  });

  it('durations that are not whole ms (restored rows without one): savedSec is the walk\'s sum in schema order', () => {
    const h = new CoreHarness(schema, { maxFailures: 1 });
    h.hello('p1');
    h.hello('p2');
    runToCompletion(h, ['p1', 'p2'], new Set(['e']), () => 1234);
    // As rows from an older store: succeeded steps without a duration, recorded averages with fractions.
    const snapshot = snapshotFromWrites(h.writes);
    const steps = snapshot.steps.map((s) => (s.status === 'succeeded' ? { ...s, durationMs: null } : s));
    const durations = snapshot.durations.map((d, i) => ({ ...d, avgMs: 1000.1 + i * 0.37 }));
    const restored = new CoreHarness(schema, { maxFailures: 1 });
    restored.clock.set(h.clock.now());
    restored.restore({ ...snapshot, steps, durations });
    for (const p of ['p1', 'p2']) {
      restored.tokens.set(p, h.tokens.get(p)!);
      restored.resume(p);
      const { summary, cohortId } = completeOf(restored, p);
      const after = restored.scheduler.dump();
      const view = cohortView(after, cohortId, schema);
      const joinedAtMs = after.peers.find((r) => r.peerId === p)!.joinedAtMs;
      const spentSec = Math.max(0, Math.round(restored.clock.now() - joinedAtMs)) / 1000;
      expect(JSON.stringify(summary)).toBe(JSON.stringify(referenceSummary(view.steps, p, view.estimateMs, false, spentSec)));
      expect(summary.savedSec % 1 === 0).toBe(false);
    }
  });
});
