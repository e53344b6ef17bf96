import { describe, expect, it } from 'vitest';
import { CoreTx } from '../../server/core/core-tx.js';
import { checkTouched, InvariantViolation } from '../../server/core/invariants.js';
import { Journal } from '../../server/core/journal.js';
import { ReadyQueue } from '../../server/core/ready-queue.js';
import { pendingStepRecord, type StepRecord } from '../../server/core/records.js';
import type { SchedulerState } from '../../server/core/scheduler-state.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

function step(stepId: string, over: Partial<StepRecord> = {}): StepRecord {
  return { ...pendingStepRecord('c', stepId), ...over };
}

function queueOf(rank: Record<string, { priorityMs: number; index: number }>): ReadyQueue {
  return new ReadyQueue((s) => s.status === 'pending', (s) => rank[s.stepId]!);
}

function drain(q: ReadyQueue, j: Journal): string[] {
  const out: string[] = [];
  for (let e = q.take(j); e !== null; e = q.take(j)) out.push(e.step.stepId);
  return out;
}

describe('ready queue: best first, lazily validated, rolled back with the input', () => {
  it('orders retries first, then the longest critical path, then schema order', () => {
    const q = queueOf({ a: { priorityMs: 10, index: 0 }, b: { priorityMs: 30, index: 1 }, c: { priorityMs: 30, index: 2 }, d: { priorityMs: 5, index: 3 } });
    const steps = { a: step('a'), b: step('b'), c: step('c'), d: step('d', { failures: 1 }) };
    for (const s of [steps.a, steps.c, steps.d, steps.b]) q.offer(s);
    expect(drain(q, new Journal())).toEqual(['d', 'b', 'c', 'a']);
  });

  it('drops a step that is no longer ready and re-ranks one that is no longer a retry when it comes up', () => {
    const q = queueOf({ a: { priorityMs: 10, index: 0 }, b: { priorityMs: 20, index: 1 }, c: { priorityMs: 30, index: 2 } });
    const a = step('a', { failures: 1 });
    const b = step('b');
    const c = step('c');
    for (const s of [a, b, c]) q.offer(s);
    Object.assign(c, { status: 'leased' }); // taken elsewhere: stale
    Object.assign(a, { failures: 0 }); // an admin retry cleared its history: now behind b
    expect(drain(q, new Journal())).toEqual(['b', 'a']);
    q.offer(step('x', { status: 'failed' }));
    expect(q.size).toBe(0); // not ready: never queued
  });

  it('a rolled-back take puts the entry back', () => {
    const q = queueOf({ a: { priorityMs: 1, index: 0 }, b: { priorityMs: 2, index: 1 } });
    q.offer(step('a'));
    q.offer(step('b'));
    const j = new Journal();
    expect(q.take(j)?.step.stepId).toBe('b');
    expect(q.take(j)?.step.stepId).toBe('a');
    j.rollback();
    expect(drain(q, new Journal())).toEqual(['b', 'a']);
  });
});

describe('invariants after an input: what it changed, not the whole cohort', () => {
  function stateOf(h: CoreHarness): SchedulerState {
    return (h.scheduler as unknown as { state: SchedulerState }).state;
  }

  it('catches a derived counter that disagrees with the status changes the input made', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('p1');
    const state = stateOf(h);
    const cohort = state.cohorts.get('c1')!;
    const tx = new CoreTx(h.clock.now());
    cohort.count(tx.journal, -1, 0); // an unresolved step "resolved" without any step changing
    tx.dirty.add(cohort);
    expect(() => checkTouched(state, tx)).toThrow(InvariantViolation);
    expect(() => checkTouched(state, tx)).toThrow(/counts 2 unresolved steps; its changes make 3/);
    tx.journal.rollback();
  });

  it('catches a step written as pending whose need failed, and a ready step missing from the queue (full check)', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1');
    const state = stateOf(h);
    const cohort = state.cohorts.get('c1')!;
    // Drain the queue behind the scheduler's back: s2 is ready (pending, no needs) but no longer queued.
    const j = new Journal();
    while (cohort.ready.take(j) !== null);
    expect(() => h.scheduler.checkInvariants()).toThrow(/step s2 is ready but not in the ready queue/);
    j.rollback();
    expect(() => h.scheduler.checkInvariants()).not.toThrow();
  });
});
