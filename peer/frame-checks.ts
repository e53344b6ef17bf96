import { closeCodes } from '../shared/close-codes.js';
import type { ErrorMessage, ServerMessage } from '../shared/protocol.js';
import type { LinkEnd } from './authority-link.js';

/** Checks on what the authority sends and how a link ended; pure. */

/** Every step id a server message names. */
export function stepIdsIn(message: ServerMessage): string[] {
  const batched = 'succeeded' in message && Array.isArray(message.succeeded) ? message.succeeded.map((s) => s.stepId) : [];
  switch (message.type) {
    case 'assign':
      return [message.stepId, ...batched];
    case 'step.update':
    case 'abort':
      return [message.stepId];
    case 'step.updates':
      return batched;
    case 'error':
      return message.stepId === undefined ? [] : [message.stepId];
    case 'wait':
      return [...message.running.map((r) => r.stepId), ...batched];
    case 'complete': {
      const s = message.summary;
      return [...s.builtHere, ...s.builtByOthers.map((b) => b.stepId), ...s.fromMemo, ...s.failed.map((f) => f.stepId), ...batched];
    }
    case 'welcome':
      return [];
  }
}

/** Close codes after which retrying cannot help. */
const refusedCloseCodes: ReadonlySet<number> = new Set([
  closeCodes.protocolError,
  1003,
  closeCodes.invalidPayload,
  closeCodes.policyViolation,
  closeCodes.messageTooBig,
  closeCodes.superseded,
  closeCodes.duplicatePeer,
]);

/**
 * What to do after a link ended: `unauthorized` and `refused` fail open at
 * once (retrying cannot help); `retry` reconnects with backoff. 4xx upgrade
 * answers other than 408/429 are refusals; 5xx and dropped connections are
 * retried (an authority behind a proxy answers 502/503 while restarting).
 */
export function classifyLinkEnd(end: LinkEnd): 'unauthorized' | 'refused' | 'retry' {
  if (end.httpStatus === 401 || end.httpStatus === 403 || end.code === closeCodes.unauthorized) return 'unauthorized';
  const httpRefused = end.httpStatus !== null && end.httpStatus >= 400 && end.httpStatus < 500 && end.httpStatus !== 408 && end.httpStatus !== 429;
  return httpRefused || refusedCloseCodes.has(end.code) ? 'refused' : 'retry';
}

/** `HTTP 401`, `SCHEMA_MISMATCH: ...; close 1008 SCHEMA_MISMATCH`, `connect ECONNREFUSED 127.0.0.1:1`. */
export function describeLinkEnd(end: LinkEnd, lastError: ErrorMessage | null): string {
  if (end.httpStatus !== null) return `HTTP ${end.httpStatus}${end.httpMessage ? `: ${end.httpMessage}` : ''}`;
  const parts: string[] = [];
  if (lastError) parts.push(`${lastError.code}: ${lastError.message}`);
  if (end.error && !lastError) parts.push(end.error);
  if (end.code !== 1006 || parts.length === 0) parts.push(`close ${end.code}${end.reason ? ` ${end.reason}` : ''}`);
  return parts.join('; ');
}
