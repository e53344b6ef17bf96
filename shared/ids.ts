import { z } from 'zod';
import { limits } from './limits.js';

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

/** Printable text without control characters (no NUL, no newlines). */
export function boundedText(maxLength: number, what = 'text') {
  return z
    .string()
    .min(1, { message: 'must not be empty', abort: true })
    .max(maxLength, `must be at most ${maxLength} characters`)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f]*$/, `${what} must not contain control characters`)
    .refine((s) => s.trim().length > 0, { message: 'must not be blank' });
}
