import { closeCodes } from '../../shared/close-codes.js';
import { errorCodes } from '../../shared/error-codes.js';
import { protocolVersion, type ServerMessage } from '../../shared/protocol.js';
import { describeStepChangeCause } from '../core/causes.js';
import type { AloneReason } from '../core/cohort-matcher.js';
import { refusalCode, type ConnId, type Effect } from '../core/effects.js';
import { describeRefusal } from './refusal-text.js';

/**
 * Protocol v1's rendering of the core's effects: the frames (and close) one
 * connection gets for one effect. Pure; the v1 socket sends them, the core
 * tests and the simulator read them.
 */
export interface V1Delivery {
  readonly messages: readonly ServerMessage[];
  readonly close: { readonly code: number; readonly reason: string } | null;
}

const nothing: V1Delivery = Object.freeze({ messages: [], close: null });

/** A broadcast effect renders to one message object, shared by every connection it reaches (encoded once). */
const rendered = new WeakMap<Effect, ServerMessage>();

export function v1Delivery(effect: Effect): V1Delivery {
  switch (effect.kind) {
    case 'joined':
      return one({
        type: 'welcome',
        protocol: protocolVersion,
        peerId: effect.peerId,
        resumeToken: effect.resumeToken,
        resumed: effect.resumed,
        cohort: { ...effect.cohort, succeeded: effect.cohort.succeeded.map((s) => ({ ...s })) },
        pingIntervalMs: effect.pingIntervalMs,
        ...(effect.alone && effect.alone.length > 0 ? { alone: effect.alone.map(describeAloneReason) } : {}),
      });
    case 'granted':
      return one({ type: 'assign', cohortId: effect.cohortId, stepId: effect.stepId, leaseId: effect.leaseId, attempt: effect.attempt, backup: effect.backup });
    case 'wait':
      return one({ type: 'wait', cohortId: effect.cohortId, running: effect.running.map((r) => ({ ...r })), unresolved: effect.unresolved });
    case 'step-changed': {
      let message = rendered.get(effect);
      if (message === undefined) {
        const c = effect.change;
        message = {
          type: 'step.update',
          cohortId: c.cohortId,
          stepId: c.stepId,
          state: c.state,
          peerId: c.peerId,
          fromMemo: c.fromMemo,
          ...(c.durationMs === undefined ? {} : { durationMs: c.durationMs }),
          ...(c.exitCode === undefined ? {} : { exitCode: c.exitCode }),
          ...(c.logTail === undefined ? {} : { logTail: c.logTail }),
          ...(c.cause === undefined ? {} : { reason: describeStepChangeCause(c.cause) }),
        };
        rendered.set(effect, message);
      }
      return one(message);
    }
    case 'complete':
      return one({ type: 'complete', cohortId: effect.cohortId, outcome: effect.outcome.kind, summary: effect.summary });
    case 'abort':
      // Protocol v1 knows three reasons; a lease ended for its age is, to the peer, a lease it lost.
      return one({ type: 'abort', stepId: effect.stepId, leaseId: effect.leaseId, reason: effect.why === 'max-age' ? 'lease-lost' : effect.why });
    case 'refuse': {
      const code = refusalCode(effect.refusal);
      const info = errorCodes[code];
      const r = effect.refusal;
      const about = r.kind === 'stale-lease' || r.kind === 'lease-not-held' ? { stepId: r.stepId, leaseId: r.leaseId } : r.kind === 'wrong-step' ? { stepId: r.stepId, ...(r.leaseId === null ? {} : { leaseId: r.leaseId }) } : {};
      return {
        messages: [{ type: 'error', code, message: describeRefusal(r), retryable: info.retryable, ...about }],
        close: info.closeCode === null ? null : { code: info.closeCode, reason: code },
      };
    }
    case 'superseded':
      return { messages: [], close: { code: closeCodes.superseded, reason: 'replaced by a resumed connection' } };
    case 'close':
      return { messages: [], close: { code: effect.code, reason: effect.reason } };
    case 'stat':
    case 'notice':
      return nothing;
  }
}

function one(message: ServerMessage): V1Delivery {
  return { messages: [message], close: null };
}

/** The v1 frames one connection was sent in a list of effects, in order (tests, the simulator). */
export function v1MessagesFor(effects: readonly Effect[], connId: ConnId): ServerMessage[] {
  const out: ServerMessage[] = [];
  for (const e of effects) {
    if (e.kind === 'step-changed' ? e.connIds.includes(connId) : 'connId' in e && e.connId === connId) out.push(...v1Delivery(e).messages);
  }
  return out;
}

/** One sentence for the welcome's `alone` list: who the peer could have shared with, and what differs. */
export function describeAloneReason(reason: AloneReason): string {
  const peers = `${reason.peers} ${reason.peers === 1 ? 'peer' : 'peers'}`;
  const short = (digest: string): string => `${digest.replace(/^sha256:/, '').slice(0, 12)}…`;
  switch (reason.kind) {
    case 'other-digest':
      return `${peers} with schema ${reason.schemaId} on the same repo and sources have digest ${short(reason.digest)}, yours is ${short(reason.yours)} (the schema files differ)`;
    case 'other-cache':
      return `${peers} on the same repo and sha use cache id ${reason.cacheId}, yours is ${reason.yours}`;
    case 'other-pipeline-type':
      return `${peers} on the same repo and sha run ${reason.pipelineType === 'independent' ? 'an' : 'a'} ${reason.pipelineType} pipeline, yours is ${reason.yours}`;
    case 'other-base-ref':
      return `${peers} on the same repo and schema are on base ref ${reason.baseRef}, yours is ${reason.yours}`;
    case 'other-base-sha': {
      const sha = (s: string | null): string => (s === null ? 'unknown (no base sha)' : `${s.slice(0, 12)}…`);
      return `${peers} on the same repo and schema are on base sha ${sha(reason.baseSha)}, yours is ${sha(reason.yours)}`;
    }
  }
}
