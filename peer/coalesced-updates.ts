import type { ServerMessage, StepUpdate } from '../shared/protocol.js';

/**
 * A peer that says `coalescedUpdates` in its hello gets other steps' successes
 * batched: a `succeeded` list on `assign`, `wait` and `complete`, or a
 * `step.updates` frame. This turns such a frame back into what an authority
 * without batching sends (one `step.update` per success, then the frame
 * itself), so everything after the decoder sees the same frames in both cases.
 */
export function expandCoalesced(message: ServerMessage): ServerMessage[] {
  if (message.type === 'step.updates') return message.succeeded.map((s) => successUpdate(message.cohortId, s));
  if ((message.type === 'assign' || message.type === 'wait' || message.type === 'complete') && message.succeeded !== undefined) {
    const { succeeded, ...rest } = message;
    return [...succeeded.map((s) => successUpdate(message.cohortId, s)), rest];
  }
  return [message];
}

function successUpdate(cohortId: string, s: { stepId: string; peerId: string | null; fromMemo: boolean; durationMs?: number }): StepUpdate {
  return { type: 'step.update', cohortId, stepId: s.stepId, state: 'succeeded', peerId: s.peerId, fromMemo: s.fromMemo, ...(s.durationMs === undefined ? {} : { durationMs: s.durationMs }) };
}
