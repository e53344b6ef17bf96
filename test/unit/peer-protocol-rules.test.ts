import { describe, expect, it } from 'vitest';
import { FinishedQueue } from '../../peer/finished-queue.js';
import { classifyLinkEnd, describeLinkEnd, stepIdsIn } from '../../peer/frame-checks.js';
import type { ServerMessage, StepFinished } from '../../shared/protocol.js';

const finished = (stepId: string, leaseId: string): StepFinished => ({ type: 'step.finished', stepId, leaseId, ok: true, exitCode: 0, durationMs: 5 });
const update = (stepId: string, state: 'succeeded' | 'failed' | 'pending' | 'leased'): ServerMessage => ({ type: 'step.update', cohortId: 'c', stepId, state, peerId: 'p', fromMemo: false });

describe('FinishedQueue: when a step result counts as acknowledged', () => {
  it('a step.update resolving the step acknowledges it; pending/leased do not', () => {
    const q = new FinishedQueue();
    q.push(finished('a', 'l1'));
    q.push(finished('b', 'l2'));
    q.observe(update('a', 'pending'));
    q.observe(update('a', 'leased'));
    expect(q.pending.map((f) => f.stepId)).toEqual(['a', 'b']);
    q.observe(update('a', 'succeeded'));
    expect(q.pending.map((f) => f.stepId)).toEqual(['b']);
    q.observe(update('b', 'failed'));
    expect(q.latest()).toBeNull();
  });

  it('an abort or error naming the lease acknowledges it; an error without a lease does not', () => {
    const q = new FinishedQueue();
    q.push(finished('a', 'l1'));
    q.push(finished('b', 'l2'));
    q.observe({ type: 'error', code: 'RATE_LIMITED', message: 'slow down', retryable: true });
    expect(q.pending).toHaveLength(2);
    q.observe({ type: 'error', code: 'STALE_LEASE', message: 'x', retryable: false, stepId: 'a', leaseId: 'l1' });
    expect(q.latest()!.leaseId).toBe('l2');
    q.observe({ type: 'abort', stepId: 'b', leaseId: 'l2', reason: 'lease-lost' });
    expect(q.pending).toEqual([]);
  });

  it('assign, wait and complete (sent only to an idle peer) acknowledge everything; welcome nothing', () => {
    const idle: ServerMessage[] = [
      { type: 'assign', cohortId: 'c', stepId: 'x', leaseId: 'l9', attempt: 1, backup: false },
      { type: 'wait', cohortId: 'c', running: [], unresolved: 1 },
      { type: 'complete', cohortId: 'c', outcome: 'succeeded', summary: { builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0 } },
    ];
    for (const message of idle) {
      const q = new FinishedQueue();
      q.push(finished('a', 'l1'));
      q.observe({ type: 'welcome', protocol: 1, peerId: 'p', resumeToken: 'rt', resumed: true, cohort: { id: 'c', peers: 1, steps: 1, resolved: 0, succeeded: [] }, pingIntervalMs: 1000 });
      expect(q.pending).toHaveLength(1);
      q.observe(message);
      expect(q.pending).toEqual([]);
    }
  });
});

describe('frame checks', () => {
  it('lists every step id a frame names, so unknown ones can be refused', () => {
    expect(stepIdsIn({ type: 'wait', cohortId: 'c', running: [{ stepId: 'a', peerId: 'p' }, { stepId: 'b', peerId: 'q' }], unresolved: 2 })).toEqual(['a', 'b']);
    expect(
      stepIdsIn({
        type: 'complete',
        cohortId: 'c',
        outcome: 'failed',
        summary: { builtHere: ['a'], builtByOthers: [{ stepId: 'b', peerId: 'p' }], fromMemo: ['c'], failed: [{ stepId: 'd', peerId: null, exitCode: null, reason: 'r' }], savedSec: 0 },
      }),
    ).toEqual(['a', 'b', 'c', 'd']);
    expect(stepIdsIn({ type: 'error', code: 'BAD_MESSAGE', message: 'm', retryable: false })).toEqual([]);
  });

  it('gives up at once on refusals, retries drops and server errors', () => {
    const end = (over: Partial<Parameters<typeof classifyLinkEnd>[0]>) => ({ code: 1006, reason: '', httpStatus: null, error: null, ...over });
    expect(classifyLinkEnd(end({ httpStatus: 401 }))).toBe('unauthorized');
    expect(classifyLinkEnd(end({ code: 4401 }))).toBe('unauthorized');
    expect(classifyLinkEnd(end({ httpStatus: 404 }))).toBe('refused');
    expect(classifyLinkEnd(end({ code: 4409 }))).toBe('refused');
    expect(classifyLinkEnd(end({ code: 1008 }))).toBe('refused');
    expect(classifyLinkEnd(end({ code: 1002 }))).toBe('refused');
    for (const retry of [end({ httpStatus: 503 }), end({ httpStatus: 429 }), end({ code: 1001 }), end({ code: 1011 }), end({ code: 1006, error: 'connect ECONNREFUSED' }), end({ code: 1000 })]) {
      expect(classifyLinkEnd(retry)).toBe('retry');
    }
    expect(describeLinkEnd(end({ httpStatus: 401 }), null)).toBe('HTTP 401');
    expect(describeLinkEnd(end({ error: 'connect ECONNREFUSED 127.0.0.1:1' }), null)).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(describeLinkEnd(end({ code: 1008, reason: 'SCHEMA_MISMATCH' }), { type: 'error', code: 'SCHEMA_MISMATCH', message: 'digest differs', retryable: false })).toBe(
      'SCHEMA_MISMATCH: digest differs; close 1008 SCHEMA_MISMATCH',
    );
  });
});
