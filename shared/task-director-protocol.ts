import { z } from 'zod';
import { errorCodeList } from './error-codes.js';
import { taskDirectorFrameShape } from './frame-shape.js';
import { describeProblems, parseFrameObject, type DecodeOptions } from './frames.js';
import { boundedText, taskDirectorPeerPrefix } from './ids.js';
import { formatJsonPath } from './json-text.js';
import { limits } from './limits.js';
import { capText } from './text-caps.js';
import { problemsFromZod } from './zod-issues.js';

/**
 * The original Task Director wire protocol, served as a drop-in on
 * `GET /ws/api/:apiVersion/:clientId/`: JSON text frames with a numeric
 * `message_type`. Client -> server: INIT (1), TASK_COMPLETE (3).
 * Server -> client: BUILD_INSTRUCTION (2), SCHEMA_COMPLETE (4), ABORT_TASK (5).
 *
 * Errors. The original client handles only types 2, 4 and 5 (and an internal
 * 6); any other `message_type`, or a frame without one, raises in its receive
 * loop and ends the client. Type 5 makes it abort the task it is running, and
 * is a no-op when it runs none — which is always the case when it gets an
 * error, because it only sends after its task has ended. So an error is a
 * type-5 frame with an `error` object and no `task_id` (a real ABORT_TASK
 * always names its task), which a newer client can tell apart.
 */
export const taskDirectorMessageType = Object.freeze({
  init: 1,
  buildInstruction: 2,
  taskComplete: 3,
  schemaComplete: 4,
  abortTask: 5,
});

/** Caps specific to this protocol; the rest come from {@link limits}. */
export const taskDirectorLimits = Object.freeze({
  /** Repositories in one `repo_state`. */
  maxRepos: 32,
  /** The original's schema name (mapped to a safe schema id when it is not one). */
  maxSchemaIdLength: 128,
  /** Task ids are the decimal index of a task. */
  maxTaskIdLength: 16,
});

/** The only `apiVersion` in the URL. */
export const taskDirectorApiVersion = '1';

const maxClientIdLength = limits.maxPeerIdLength - taskDirectorPeerPrefix.length;

/** URL parameters: both parts letters, digits and `_`, as the original's routing allowed. */
export const taskDirectorRouteParamsSchema = z.strictObject({
  apiVersion: z.string().regex(/^[A-Za-z0-9_]{1,16}$/, 'must be letters, digits and _'),
  clientId: z
    .string()
    .min(1, 'must not be empty')
    // The authority's peer id is the client id behind a namespace prefix (shared/ids.ts), within the peer-id cap.
    .max(maxClientIdLength, `must be at most ${maxClientIdLength} characters`)
    .regex(/^[A-Za-z0-9_]+$/, 'must be letters, digits and _ only'),
});
export type TaskDirectorRouteParams = z.infer<typeof taskDirectorRouteParamsSchema>;

const ref = boundedText(limits.maxRefLength, 'a ref');
const schemaId = boundedText(taskDirectorLimits.maxSchemaIdLength, 'a schema id');
const taskId = z.string().min(1).max(taskDirectorLimits.maxTaskIdLength);

export const repoStateEntrySchema = z.strictObject({
  base_ref: ref,
  patchset: ref,
  additional_patchsets: z.array(ref).max(limits.maxPatchsets).optional(),
});

// ---- client -> server ---------------------------------------------------------

export const tdInitSchema = z
  .strictObject({
    message_type: z.literal(taskDirectorMessageType.init),
    repo_state: z.record(boundedText(limits.maxRepoLength, 'a repo name'), repoStateEntrySchema),
    complex_patchset: z.boolean(),
    cache_id: boundedText(limits.maxNameLength, 'a cache id'),
    schema_id: schemaId,
    total_tasks: z.number().int().min(1).max(limits.maxSteps),
  })
  .superRefine((init, ctx) => {
    const repos = Object.keys(init.repo_state);
    if (repos.length === 0) ctx.addIssue({ code: 'custom', path: ['repo_state'], message: 'must name at least one repository' });
    if (repos.length > taskDirectorLimits.maxRepos) {
      ctx.addIssue({ code: 'custom', path: ['repo_state'], message: `must name at most ${taskDirectorLimits.maxRepos} repositories` });
    }
    let patchsets = 0;
    for (const entry of Object.values(init.repo_state)) patchsets += 1 + (entry.additional_patchsets?.length ?? 0);
    if (patchsets > limits.maxPatchsets) {
      ctx.addIssue({ code: 'custom', path: ['repo_state'], message: `must list at most ${limits.maxPatchsets} patchsets in all` });
    }
  });

export const tdTaskCompleteSchema = z.strictObject({
  message_type: z.literal(taskDirectorMessageType.taskComplete),
  schema_id: schemaId,
  task_id: taskId,
  task_success: z.boolean(),
});

export type TdInit = z.infer<typeof tdInitSchema>;
export type TdTaskComplete = z.infer<typeof tdTaskCompleteSchema>;
export type TdClientFrame = TdInit | TdTaskComplete;

// ---- server -> client ---------------------------------------------------------

export const tdBuildInstructionSchema = z.strictObject({
  message_type: z.literal(taskDirectorMessageType.buildInstruction),
  /** The original server sends it (a Django Channels handler name); clients ignore it. */
  type: z.literal('send.message'),
  schema_id: schemaId,
  task_id: taskId,
});

export const tdSchemaCompleteSchema = z.strictObject({
  message_type: z.literal(taskDirectorMessageType.schemaComplete),
  schema_id: schemaId,
});

export const tdAbortTaskSchema = z.strictObject({
  message_type: z.literal(taskDirectorMessageType.abortTask),
  schema_id: schemaId,
  task_id: taskId,
});

/** An error for this connection only; shaped so the original client treats it as a no-op (see above). */
export const tdErrorSchema = z.strictObject({
  message_type: z.literal(taskDirectorMessageType.abortTask),
  /** Present once the connection sent a valid INIT. */
  schema_id: schemaId.optional(),
  error: z.strictObject({
    code: z.enum(errorCodeList),
    message: z.string().max(limits.maxMessageLength),
    retryable: z.boolean(),
  }),
});

export const tdServerFrameSchema = z.union([tdBuildInstructionSchema, tdSchemaCompleteSchema, tdAbortTaskSchema, tdErrorSchema]);

export type TdBuildInstruction = z.infer<typeof tdBuildInstructionSchema>;
export type TdSchemaComplete = z.infer<typeof tdSchemaCompleteSchema>;
export type TdAbortTask = z.infer<typeof tdAbortTaskSchema>;
export type TdError = z.infer<typeof tdErrorSchema>;
export type TdServerFrame = z.infer<typeof tdServerFrameSchema>;

// ---- decoding -------------------------------------------------------------------

/**
 * One decoded client frame, or why it is not one. `claimedType` is the
 * frame's `message_type` when it had a numeric one, so the transport can tell
 * a broken INIT (the client would wait forever) from other bad frames.
 */
export type TdDecoded =
  | { readonly ok: true; readonly frame: TdClientFrame }
  | { readonly ok: false; readonly problem: string; readonly claimedType: number | null };

const tdClientOptions: DecodeOptions = { shape: taskDirectorFrameShape(taskDirectorLimits.maxRepos), typeField: 'message_type', bulkyType: taskDirectorMessageType.init };

/**
 * `checkedSchemaId`: the schema id of this connection's INIT, which zod already checked (null before
 * INIT). A TASK_COMPLETE naming exactly that id, with a task id of 1 to 16 characters, a boolean
 * `task_success` and no other key, is accepted without zod (it is every client's hot frame): those
 * are `tdTaskCompleteSchema`'s rules, and the schema id passed them when the INIT did. Anything
 * else goes to zod, which accepts it or names the field (test/unit/td-fast-path.test.ts holds the
 * two to the same verdict).
 */
export function decodeTaskDirectorFrame(text: string, checkedSchemaId: string | null = null): TdDecoded {
  const parsed = parseFrameObject(text, tdClientOptions);
  if (!parsed.ok) {
    return { ok: false, problem: parsed.problem.replace('"message_type"', 'numeric "message_type"'), claimedType: claimedTypeOf(text) };
  }
  const value = parsed.value;
  if (checkedSchemaId !== null && isPlainTaskComplete(value, checkedSchemaId)) return { ok: true, frame: value };
  const type = value.message_type;
  if (type === undefined) return { ok: false, problem: 'message_type: is required', claimedType: null };
  if (typeof type !== 'number') return { ok: false, problem: `message_type: expected a number, got ${capText(JSON.stringify(type), 40)}`, claimedType: null };
  const schema = type === taskDirectorMessageType.init ? tdInitSchema : type === taskDirectorMessageType.taskComplete ? tdTaskCompleteSchema : null;
  if (schema === null) {
    return { ok: false, problem: `message_type: unknown message_type ${type}; a client sends 1 (INIT) or 3 (TASK_COMPLETE)`, claimedType: type };
  }
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return { ok: true, frame: result.data };
  const name = type === taskDirectorMessageType.init ? 'INIT' : 'TASK_COMPLETE';
  return { ok: false, problem: describeProblems(problemsFromZod(result.error), name), claimedType: type };
}

function isPlainTaskComplete(v: Record<string, unknown>, checkedSchemaId: string): v is TdTaskComplete {
  let keys = 0;
  for (const key in v) {
    keys++;
    if (key !== 'message_type' && key !== 'schema_id' && key !== 'task_id' && key !== 'task_success') return false;
  }
  const taskId = v.task_id;
  return (
    keys === 4 &&
    v.message_type === taskDirectorMessageType.taskComplete &&
    v.schema_id === checkedSchemaId &&
    typeof taskId === 'string' &&
    taskId.length >= 1 &&
    taskId.length <= taskDirectorLimits.maxTaskIdLength &&
    typeof v.task_success === 'boolean'
  );
}

/**
 * The `message_type` of a frame refused before parsing, read cheaply from its
 * start, so a broken INIT still closes the connection (the client would wait
 * for a task forever). Null when it is not plainly there.
 */
function claimedTypeOf(text: string): number | null {
  const match = /^\s*\{\s*"message_type"\s*:\s*(\d{1,3})\b/.exec(text.slice(0, 64));
  return match ? Number(match[1]) : null;
}

/** Checks a server frame (tests use it on everything they receive). */
export function decodeTaskDirectorServerFrame(text: string): { ok: true; frame: TdServerFrame } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `not valid JSON (${(err as Error).message})` };
  }
  const parsed = tdServerFrameSchema.safeParse(value, { reportInput: true });
  if (parsed.success) return { ok: true, frame: parsed.data };
  return { ok: false, problem: problemsFromZod(parsed.error).map((p) => `${formatJsonPath(p.path)}: ${p.message}`).join('; ') };
}
