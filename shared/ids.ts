import { z } from 'zod';
import { limits } from './limits.js';
import './text-caps.js';

/**
 * Safe ids for steps and schemas: a letter, digit or `_` first, then letters,
 * digits and `_ . : @ + -`; never `..`, `/`, whitespace or NUL. Safe to use in
 * file names, URLs and log lines without quoting.
 */
export const safeIdPattern = /^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.:@+-]*$/;

/** The step id every peer builds itself at the end; no schema step may use it. */
export const universeStepId = 'universe';

const safeIdRule = 'letters, digits and _ . : @ + - only, starting with a letter, digit or _, and no ".."';

/** A step or schema id. */
export const safeIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(limits.maxIdLength, `must be at most ${limits.maxIdLength} characters`)
  .regex(safeIdPattern, `must use ${safeIdRule}`);

/** Peer ids are longer (CI job names) but follow the same character rule. */
export const peerIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(limits.maxPeerIdLength, `must be at most ${limits.maxPeerIdLength} characters`)
  .regex(safeIdPattern, `must use ${safeIdRule}`);

/**
 * Printable text without control characters (no NUL, no newlines) and
 * well-formed: a lone surrogate is refused, since it would be stored as U+FFFD
 * and so change (and merge with other text) after a restart.
 */
export function boundedText(maxLength: number, what = 'text') {
  return z
    .string()
    .min(1, { message: 'must not be empty', abort: true })
    .max(maxLength, `must be at most ${maxLength} characters`)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f]*$/, `${what} must not contain control characters`)
    .refine((s) => s.isWellFormed(), { message: `${what} must be well-formed Unicode (no lone surrogates)` })
    .refine((s) => s.trim().length > 0, { message: 'must not be blank' });
}

/**
 * Free text (a log tail, a reason) up to `maxLength` characters, with any lone
 * surrogate replaced by U+FFFD on the way in: a tail cut at a character count
 * can split a pair, which must not cost the peer its report, and what is stored
 * is then exactly what is read back after a restart.
 */
export function freeText(maxLength: number) {
  return z
    .string()
    .max(maxLength, `must be at most ${maxLength} characters`)
    .transform((s) => s.toWellFormed());
}

/**
 * Peer ids of Task Director clients live in their own namespace: the client
 * id from the URL with this prefix. A v1 hello may not use it, so neither
 * protocol can take (or lock out) the other's ids.
 */
export const taskDirectorPeerPrefix = 'td:';

/** The peer id the authority uses for a Task Director `client_id`. */
export function taskDirectorPeerId(clientId: string): string {
  return `${taskDirectorPeerPrefix}${clientId}`;
}

/** A protocol-v1 peer id: a {@link peerIdSchema} outside the Task Director namespace. */
export const v1PeerIdSchema = peerIdSchema.refine((id) => !id.startsWith(taskDirectorPeerPrefix), {
  message: `must not start with "${taskDirectorPeerPrefix}" (reserved for Task Director clients)`,
});
