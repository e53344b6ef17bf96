import { describe, expect, it } from 'vitest';
import { CoreTx } from '../../server/core/core-tx.js';
import { checkRising, InvariantViolation } from '../../server/core/invariants.js';
import type { SchedulerState } from '../../server/core/scheduler-state.js';
import type { CohortDetailView } from '../../server/core/read-model.js';
import { runOfDetail } from '../../server/http/run-reader.js';
import { CoreHarness, messagesIn } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

/** The scheduler's state, for tests that play a buggy handler against the production invariant check. */
function stateOf(h: CoreHarness): SchedulerState {
  return (h.scheduler as unknown as { state: SchedulerState }).state;
}

describe('invariant: attempts only rise (checked after every input, in production)', () => {
  function leasedOnce(): { h: CoreHarness; state: SchedulerState } {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    expect(h.lastAssign('p1')).toMatchObject({ stepId: 's1', attempt: 1 });
    return { h, state: stateOf(h) };
  }

  it('throws when an input lowers a step attempts counter', () => {
    const { h, state } = leasedOnce();
    const step = state.cohorts.get('c1')!.steps.get('s1')!;
    const tx = new CoreTx(h.clock.now());
    tx.journal.set(step, { attempts: 0 });
    tx.step(step);
    expect(() => checkRising(state, tx)).toThrow(InvariantViolation);
    expect(() => checkRising(state, tx)).toThrow(/attempts fell from 1 to 0/);
    tx.journal.rollback();
    expect(step.attempts).toBe(1);
  });

  it('throws when a lease is written with an attempt number its step never reached', () => {
    const { h, state } = leasedOnce();
    const lease = state.cohorts.get('c1')!.leases.get('l1')!;
    const tx = new CoreTx(h.clock.now());
    tx.journal.set(lease, { attempt: 2 });
    tx.lease(lease);
    expect(() => checkRising(state, tx)).toThrow(/lease l1 has attempt 2; its step s1 counts 1/);
    tx.journal.rollback();
  });

  it('accepts a rise, and a value set twice in one input is compared with the one before the input', () => {
    const { h, state } = leasedOnce();
    const step = state.cohorts.get('c1')!.steps.get('s1')!;
    const tx = new CoreTx(h.clock.now());
    tx.journal.set(step, { attempts: 3 });
    tx.journal.set(step, { attempts: 2 });
    tx.step(step);
    expect(() => checkRising(state, tx)).not.toThrow();
    tx.journal.set(step, { attempts: 0 });
    expect(() => checkRising(state, tx)).toThrow(/attempts fell from 1 to 0/);
    tx.journal.rollback();
  });

  it('holds over a real history of retries (every input is checked by handle itself)', () => {
    const h = new CoreHarness(flatSchema(1), { maxFailures: 3 });
    h.hello('p1');
    h.hello('p2');
    for (let i = 0; i < 2; i++) {
      const holder = h.lastAssign('p1') && !h.sent('p1').some((m) => m.type === 'step.update') ? 'p1' : 'p2';
      const a = h.lastAssign(holder)!;
      const out = h.finish(holder, a.leaseId, a.stepId, false);
      expect(out.fault).toBeNull();
    }
    const attempts = h.writes.flatMap((w) => (w.table === 'lease' ? [w.row.attempt] : []));
    expect(Math.max(...attempts)).toBe(3);
  });
});

describe('draining: the core refuses hellos (adapters only render)', () => {
  it('refuses a new peer and a resuming one with shutting-down, and changes nothing', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1');
    h.disconnect('p1');
    h.handle({ kind: 'drain' });
    const fresh = h.hello('p2');
    expect(fresh.effects).toEqual([{ kind: 'refuse', connId: h.conns.get('p2'), refusal: { kind: 'shutting-down' } }]);
    expect(fresh.writes).toEqual([]);
    expect(messagesIn(fresh, h.conns.get('p2')!)).toEqual([
      { type: 'error', code: 'SHUTTING_DOWN', message: 'the authority is shutting down; reconnect with your resume token', retryable: true },
    ]);
    const resumed = h.resume('p1');
    expect(resumed.effects).toEqual([{ kind: 'refuse', connId: h.conns.get('p1'), refusal: { kind: 'shutting-down' } }]);
    expect(h.scheduler.counts()).toMatchObject({ peersConnected: 0 });
  });
});

describe('run reader: causes from the typed columns, prose rendered at the edge', () => {
  const detail: CohortDetailView = {
    cohort: {
      cohortId: 'c1',
      schemaId: 'flat',
      digest: 'sha256:x',
      repo: 'r',
      baseRef: 'main',
      baseSha: null,
      cohortKey: null,
      cacheId: 'k',
      pipelineType: 'independent',
      pipelineNames: ['check'],
      isolated: false,
      patchsets: [],
      status: 'complete',
      createdAtMs: 1,
      resolvedAtMs: 9,
      lastActivityMs: 9,
      secondsSaved: 0,
      outcome: { kind: 'failed', failedSteps: 1 },
      steps: { total: 1, pending: 0, leased: 0, succeeded: 0, failed: 1, fromMemo: 0 },
      peers: 1,
    },
    universe: '//...',
    steps: [
      {
        stepId: 's1',
        target: '//s1/...',
        needs: [],
        estimateSec: null,
        status: 'failed',
        attempts: 2,
        failures: 0,
        lostLeases: 3,
        failedOn: [],
        builtBy: null,
        fromMemo: false,
        durationMs: null,
        // The text column says something else: it must not be what the run shows.
        failReason: 'stale text from an old writer',
        failCause: { kind: 'lost-too-often', lostLeases: 3, last: 'grace-expired' },
        failPeerId: null,
        failExitCode: null,
        failLogTail: null,
        resolvedAtMs: 9,
      },
    ],
    leases: [{ leaseId: 'l1', stepId: 's1', peerId: 'p1', attempt: 1, backup: false, startedAtMs: 2, endedAtMs: 5, outcome: 'failed', end: { kind: 'lost', why: 'grace-expired' } }],
    peers: [],
    timeline: [],
  };

  it('reads fail_cause_json and end_json, not fail_reason or the outcome text', () => {
    const run = runOfDetail(detail);
    expect(run.steps[0]).toMatchObject({
      failCause: { kind: 'lost-too-often', lostLeases: 3, last: 'grace-expired' },
      failReason: 'lost its peer 3 times (last: grace period expired); the step may be killing its peer',
    });
    expect(run.leases[0]).toMatchObject({ end: { kind: 'lost', why: 'grace-expired' }, outcome: 'lost' });
    expect(run.cohort.storedOutcome).toEqual({ kind: 'failed', failedSteps: 1 });
  });
});
