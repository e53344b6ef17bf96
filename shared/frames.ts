import type { z } from 'zod';
import { formatJsonPath } from './json-text.js';
import { peerMessageSchema, serverMessageSchema, type PeerMessage, type ServerMessage } from './protocol.js';
import { problemsFromZod } from './zod-issues.js';

/**
 * Decoding one text frame into a protocol message. A bad frame gives one
 * human message naming the field and the rule, e.g.
 * `step.finished: exitCode: expected number, got string "x"`.
 */
export type Decoded<T> = { readonly ok: true; readonly message: T } | { readonly ok: false; readonly problem: string };

function decodeWith<T>(schema: z.ZodType<T>, text: string): Decoded<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `not valid JSON (${(err as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: 'a frame must be a JSON object with a "type"' };
  }
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return { ok: true, message: parsed.data };
  const type = typeof (value as { type?: unknown }).type === 'string' ? String((value as { type: string }).type).slice(0, 40) : null;
  const problems = problemsFromZod(parsed.error).slice(0, 3);
  const described = problems.map((p) => `${formatJsonPath(p.path)}: ${p.message}`).join('; ');
  return { ok: false, problem: type ? `${type}: ${described}` : described };
}

export function decodePeerMessage(text: string): Decoded<PeerMessage> {
  return decodeWith(peerMessageSchema, text);
}

export function decodeServerMessage(text: string): Decoded<ServerMessage> {
  return decodeWith(serverMessageSchema, text);
}
