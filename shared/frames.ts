import { z } from 'zod';
import { ContentLru } from './content-lru.js';
import { frameShapeProblem, v1FrameShape, type FrameShapeCaps } from './frame-shape.js';
import { formatJsonPath, type JsonPath } from './json-text.js';
import { limits } from './limits.js';
import { safeIdPattern } from './ids.js';
import { helloSchema, peerMessageSchema, serverMessageSchema, type Hello, type PeerMessage, type ServerMessage, type StepFinished, type WireSchema } from './protocol.js';
import { capText, maxShownKeyChars } from './text-caps.js';
import { problemsFromZod, type LocatedProblem } from './zod-issues.js';

/**
 * Decoding one text frame into a protocol message. A bad frame gives one
 * human message naming the field and the rule, e.g.
 * `step.finished: exitCode: expected number, got string "x"`.
 *
 * Cheap checks come first: the frame's shape is scanned before `JSON.parse`
 * (see frame-shape.ts), and a frame over {@link limits.maxFrameBytes} must be
 * the one message allowed to be that large (the hello) before zod sees it.
 * Input echoed in a problem (keys, values) is cut short, and the problem as a
 * whole fits the protocol's message cap.
 */
export type Decoded<T> = { readonly ok: true; readonly message: T } | { readonly ok: false; readonly problem: string };

export interface DecodeOptions {
  readonly shape: FrameShapeCaps;
  /** The discriminating field: `type` (v1) or `message_type` (Task Director). */
  readonly typeField: string;
  /** Frames from a client: only this type may exceed `limits.maxFrameBytes`; null for frames from the server. */
  readonly bulkyType: string | number | null;
}

/** A frame's size in UTF-8 bytes, computed only when it could pass `maxBytes`. */
export function exceedsBytes(text: string, maxBytes: number): boolean {
  return text.length * 3 > maxBytes && Buffer.byteLength(text, 'utf8') > maxBytes;
}

/** Parses a frame after the cheap checks; a problem string when it is not a JSON object or breaks a cap. */
export function parseFrameObject(text: string, options: DecodeOptions): { ok: true; value: Record<string, unknown> } | { ok: false; problem: string } {
  const shape = frameShapeProblem(text, options.shape);
  if (shape !== null) return { ok: false, problem: capText(shape, 300) };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: capText(`not valid JSON (${(err as Error).message})`, 300) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: `a frame must be a JSON object with a "${options.typeField}"` };
  }
  const record = value as Record<string, unknown>;
  if (options.bulkyType !== null && record[options.typeField] !== options.bulkyType && exceedsBytes(text, limits.maxFrameBytes)) {
    return { ok: false, problem: `only the first frame (${JSON.stringify(options.bulkyType)}) may be larger than ${limits.maxFrameBytes} bytes` };
  }
  return { ok: true, value: record };
}

/** A path from input, each key cut short: `steps[1]["aaaa…"]`. */
export function shownPath(path: JsonPath): string {
  return formatJsonPath(path.map((part) => (typeof part === 'string' ? capText(part, maxShownKeyChars) : part)));
}

/** Up to three problems as one line within the protocol's message cap. */
export function describeProblems(problems: readonly LocatedProblem[], prefix: string | null): string {
  const described = problems
    .slice(0, 3)
    .map((p) => `${shownPath(p.path)}: ${capText(p.message, 300)}`)
    .join('; ');
  return capText(prefix === null ? described : `${prefix}: ${described}`, limits.maxMessageLength);
}

const peerOptions: DecodeOptions = { shape: v1FrameShape, typeField: 'type', bulkyType: 'hello' };
const serverOptions: DecodeOptions = { shape: v1FrameShape, typeField: 'type', bulkyType: null };

function decodeWith<T>(schema: z.ZodType<T>, text: string, options: DecodeOptions): Decoded<T> {
  const parsed = parseFrameObject(text, options);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return { ok: true, message: result.data };
  const type = typeof value.type === 'string' ? capText(value.type, 40) : null;
  return { ok: false, problem: describeProblems(problemsFromZod(result.error), type) };
}

export function decodePeerMessage(text: string): Decoded<PeerMessage> {
  const parsed = parseFrameObject(text, peerOptions);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (value.type === 'hello') return decodeHello(value);
  if (value.type === 'step.finished' && isPlainStepFinished(value)) return { ok: true, message: value };
  return decodeParsed(peerMessageSchema, value);
}

const tokenPattern = /^[A-Za-z0-9_.:-]+$/;
const maxDurationMs = limits.maxEstimateSec * 1000 * 4;

/**
 * The hot frame's fast path: a `step.finished` without a log tail (every success) is
 * checked field by field against the same rules as `stepFinishedSchema` (a strict
 * object: a token lease id, a safe step id, a boolean, an integer exit code in
 * -1024..1024 or null, an integer duration in 0..4 × the longest estimate, `unpublished`
 * only as true). It only ever accepts: anything it does not accept (a log tail, whose
 * text zod makes well-formed, an unknown key, a bad value) goes to zod, which
 * accepts it or names the field and the rule. test/unit/frames-fast-path.test.ts holds
 * the two to the same verdict.
 */
function isPlainStepFinished(v: Record<string, unknown>): v is StepFinished {
  let keys = 0;
  for (const key in v) {
    keys++;
    if (key !== 'type' && key !== 'leaseId' && key !== 'stepId' && key !== 'ok' && key !== 'exitCode' && key !== 'durationMs' && key !== 'unpublished') return false;
  }
  const { leaseId, stepId, exitCode, durationMs } = v;
  return (
    keys >= 6 &&
    typeof leaseId === 'string' &&
    leaseId.length >= 1 &&
    leaseId.length <= limits.maxTokenLength &&
    tokenPattern.test(leaseId) &&
    typeof stepId === 'string' &&
    stepId.length >= 1 &&
    stepId.length <= limits.maxIdLength &&
    safeIdPattern.test(stepId) &&
    typeof v.ok === 'boolean' &&
    (exitCode === null || (Number.isInteger(exitCode) && (exitCode as number) >= -1024 && (exitCode as number) <= 1024)) &&
    Number.isInteger(durationMs) &&
    (durationMs as number) >= 0 &&
    (durationMs as number) <= maxDurationMs &&
    (v.unpublished === undefined ? keys === 6 : v.unpublished === true && keys === 7)
  );
}

function decodeParsed<T>(schema: z.ZodType<T>, value: Record<string, unknown>): Decoded<T> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return { ok: true, message: result.data };
  const type = typeof value.type === 'string' ? capText(value.type, 40) : null;
  return { ok: false, problem: describeProblems(problemsFromZod(result.error), type) };
}

/** The hello's own fields, its schema left to {@link wireSchemas}; as strict as `helloSchema` everywhere else. */
const helloFieldsSchema = helloSchema.extend({ schema: z.unknown() });

/**
 * Wire schemas that passed `wireSchemaSchema`, by their exact content (the JSON of the
 * parsed value, never the digest the peer claims). Every peer of a fleet sends the same
 * few schemas, and checking one of 1,000 steps with zod took 4× its `JSON.parse`: the
 * schema of a hello whose schema was seen before is compared by content instead. Only
 * valid schemas are kept (a bad one costs its sender the full check each time); least
 * recently used first out, within 64 schemas and 8 M characters (content-lru.ts).
 * Entries are frozen: every hello with that schema gets the same object.
 */
const wireSchemas = new ContentLru<WireSchema>(64, 8 * 1024 * 1024);

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * A hello: its schema checked by zod once per distinct content, every other field every time. A
 * digest-first hello (`schemaDigest`, no `schema`) has no schema to check here: the authority looks
 * the digest up (server/http/hello-input.ts). A hello with neither is refused, naming `schema`.
 */
function decodeHello(value: Record<string, unknown>): Decoded<Hello> {
  if (value.schema === undefined) {
    if (value.schemaDigest === undefined) return { ok: false, problem: 'hello: schema: required (or schemaDigest, naming a schema the authority holds)' };
    return decodeParsed(helloSchema, value);
  }
  const key = typeof value.schema === 'object' && value.schema !== null ? JSON.stringify(value.schema) : null;
  const known = key === null ? undefined : wireSchemas.get(key);
  if (known === undefined) {
    const decoded = decodeParsed(helloSchema, value);
    if (decoded.ok && key !== null && decoded.message.schema !== undefined) wireSchemas.set(key, deepFreeze(decoded.message.schema));
    return decoded;
  }
  const decoded = decodeParsed(helloFieldsSchema, value);
  return decoded.ok ? { ok: true, message: { ...decoded.message, schema: known } } : decoded;
}

export function decodeServerMessage(text: string): Decoded<ServerMessage> {
  return decodeWith(serverMessageSchema, text, serverOptions);
}
