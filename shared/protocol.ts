import { z } from 'zod';
import { errorCodeList } from './error-codes.js';
import { boundedText, freeText, peerIdSchema, safeIdSchema, v1PeerIdSchema } from './ids.js';
import { labelListSchema } from './labels.js';
import { isJobUrl } from './job-url.js';
import { limits } from './limits.js';
import { estimateSecSchema, targetSchema } from './schema-file.js';

/**
 * Protocol v1 (DESIGN §8): JSON text frames on `GET /v1/peer`. Every message
 * is a strict object with a `type`; both directions are discriminated unions,
 * validated with zod on both sides. Types come only from `z.infer`.
 */
export const protocolVersion = 1 as const;

const token = z.string().min(1).max(limits.maxTokenLength).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a token (letters, digits, _ . : -)');
/** What a peer-chosen registration token must look like: 43 to 128 base64url characters (32 random bytes or more). */
export const registrationTokenSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43,128}$/, 'must be 43 to 128 base64url characters (A-Z a-z 0-9 _ -): at least 32 random bytes');
const ref = boundedText(limits.maxRefLength, 'a ref');
const name = boundedText(limits.maxNameLength, 'a name');
const sha = z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a hex commit sha (7 to 64 lowercase hex digits)');
const message = freeText(limits.maxMessageLength);
const logTail = freeText(limits.maxLogTailChars);
const count = z.number().int().min(0).max(1_000_000_000);
const durationMs = z.number().int().min(0).max(limits.maxEstimateSec * 1000 * 4);
const exitCode = z.number().int().min(-1024).max(1024).nullable();

export const pipelineTypeSchema = z.enum(['independent', 'dependent']);
export type PipelineType = z.infer<typeof pipelineTypeSchema>;

export const stepStateSchema = z.enum(['pending', 'leased', 'succeeded', 'failed']);

const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');

/** A schema as sent in `hello`: normalized list form plus the digest the peer computed. */
export const wireSchemaSchema = z.strictObject({
  id: safeIdSchema,
  digest: digestSchema,
  universe: targetSchema,
  steps: z
    .array(
      z.strictObject({
        id: safeIdSchema,
        target: targetSchema,
        needs: z.array(safeIdSchema).max(limits.maxNeedsPerStep),
        estimateSec: estimateSecSchema.optional(),
        /** Labels a peer needs to build the step (additive; sent only when the step lists some). */
        requires: labelListSchema.optional(),
      }),
    )
    .min(1)
    .max(limits.maxSteps),
});
export type WireSchema = z.infer<typeof wireSchemaSchema>;

// ---- peer -> server -------------------------------------------------------

export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  protocol: z.number().int().min(1).max(1000),
  peerId: v1PeerIdSchema,
  /** Present when reconnecting: the token from the earlier `welcome`. */
  resumeToken: token.optional(),
  /**
   * Additive: a random token this peer process picked once (at least 256 bits), sent on every hello until
   * its first `welcome`. The authority makes it the registration's resume token, so a hello whose join was
   * committed but whose welcome never arrived (the authority died in between) resumes that registration
   * instead of being refused as a duplicate peer. Not a resume token: it does not change cohort matching.
   */
  registrationToken: registrationTokenSchema.optional(),
  client: z.strictObject({ name, version: name }).optional(),
  repo: boundedText(limits.maxRepoLength, 'a repo'),
  baseRef: ref,
  baseSha: sha.optional(),
  changeRef: ref.optional(),
  /** The source state's patchsets (change refs applied on top of the base), in order. */
  patchsets: z.array(ref).max(limits.maxPatchsets),
  pipeline: z.strictObject({ name, type: pipelineTypeSchema }),
  isolated: z.boolean(),
  cacheId: name,
  /**
   * The schema, with its digest. Required unless `schemaDigest` is sent (a hello needs one of the two;
   * shared/frames.ts refuses a hello with neither, naming `schema`).
   */
  schema: wireSchemaSchema.optional(),
  /**
   * Additive (digest-first hello): the schema named by `helloSchemaDigest` (shared/schema-digest.ts: the
   * cohort digest's canonical form plus each step's `estimateSec`), so the hello can leave `schema` out.
   * An authority that holds that schema (it checked it recently) proceeds as if the schema had been sent;
   * one that does not answers `UNKNOWN_SCHEMA` and the peer sends the hello again with `schema` on the
   * same connection. Sent with `schema` too, it must match it (`SCHEMA_MISMATCH` otherwise).
   */
  schemaDigest: digestSchema.optional(),
  /**
   * What kind of machine this peer is (`--label`, plus `os:`, `arch:` and `ci:` detected): it gets only
   * steps whose `requires` these include. Additive; absent means no labels.
   */
  labels: labelListSchema.optional(),
  /** The step this peer is running right now, when resuming. */
  currentStep: z.strictObject({ stepId: safeIdSchema, leaseId: token }).nullable().optional(),
  /**
   * Names the group explicitly (`--cohort-key`): peers with the same key, repo,
   * cache id and schema share, whatever their refs and patchsets. Sent only when set.
   */
  cohortKey: name.optional(),
  /**
   * The peer takes successes of other steps batched (`succeeded` on `assign`, `wait`, `complete`,
   * and `step.updates`) instead of one `step.update` each while it is busy. Sent by peers that
   * understand those fields; without it the authority sends every `step.update` as before.
   */
  coalescedUpdates: z.literal(true).optional(),
  /**
   * Additive: the peer needs another step's success only while it waits (told `wait`, not assigned since)
   * and for the step it built; the authority sends it no other success (failures and steps reopened
   * still reach every member). Sent by the taskshard peer; without it every member hears every success.
   */
  targetedUpdates: z.literal(true).optional(),
  /**
   * The CI job's page (additive), detected from the CI environment: an http(s) URL without
   * credentials, at most `limits.maxUrlLength` characters. The dashboard links it.
   */
  ciJobUrl: z.string().refine(isJobUrl, `must be an http(s) URL without credentials, at most ${limits.maxUrlLength} characters`).optional(),
});

export const stepFinishedSchema = z.strictObject({
  type: z.literal('step.finished'),
  leaseId: token,
  stepId: safeIdSchema,
  ok: z.boolean(),
  exitCode,
  durationMs,
  logTail: logTail.optional(),
  /**
   * With `ok: false` (additive): the step was built but `--verify` found its result missing from the
   * remote cache. The authority leases it again, preferring another peer, and does not count it as
   * a build failure; `exitCode` and `logTail` are the verifier's. An older authority sees a failure.
   */
  unpublished: z.literal(true).optional(),
});

export const byeSchema = z.strictObject({
  type: z.literal('bye'),
  reason: message.optional(),
});

/** The build tools whose cache summaries the peer reads (`--build-tool`). */
export const buildToolSchema = z.enum(['bazel', 'turbo']);

/**
 * What a peer's universe build took from the remote cache, in the build tool's own terms: actions
 * (Bazel) or tasks (turbo) served by the cache, those that ran, and the shared steps with work that
 * ran instead of coming from the cache ("why did this rebuild?").
 */
export const cacheEvidenceSchema = z.strictObject({
  tool: buildToolSchema,
  hits: count,
  misses: count,
  missedSteps: z.array(safeIdSchema).max(limits.maxSteps),
  /**
   * Where it was read: `record` (Bazel's execution log, turbo's run summary: per action or task,
   * so `missedSteps` is known) or `output` (the tool's summary line in the build's output, when
   * the build left no record: totals only, `missedSteps` empty). Absent means `record`.
   */
  source: z.enum(['record', 'output']).optional(),
});

/** `POST /api/v1/cohorts/:cohortId/cache-evidence` (peer token): a peer's evidence after its universe build. */
export const cacheEvidenceReportSchema = z.strictObject({
  peerId: peerIdSchema,
  evidence: cacheEvidenceSchema,
});
export type CacheEvidenceReport = z.infer<typeof cacheEvidenceReportSchema>;

/**
 * `POST /api/v1/cohorts/:cohortId/universe` (peer token, additive): a peer's universe build, sent
 * once it ended. The authority takes the report's arrival as the end and `durationMs` back from it
 * as the start, so the dashboard draws the real build instead of inferring one; peers that never
 * send it keep the inferred bar.
 */
export const universeReportSchema = z.strictObject({
  peerId: peerIdSchema,
  ok: z.boolean(),
  exitCode,
  durationMs,
});
export type UniverseReport = z.infer<typeof universeReportSchema>;

export const peerMessageSchema = z.discriminatedUnion('type', [helloSchema, stepFinishedSchema, byeSchema]);
export type PeerMessage = z.infer<typeof peerMessageSchema>;
export type Hello = z.infer<typeof helloSchema>;
export type StepFinished = z.infer<typeof stepFinishedSchema>;

// ---- server -> peer -------------------------------------------------------

export const welcomeSchema = z.strictObject({
  type: z.literal('welcome'),
  protocol: z.literal(protocolVersion),
  peerId: peerIdSchema,
  resumeToken: token,
  /** True when this hello continued an earlier registration. */
  resumed: z.boolean(),
  cohort: z.strictObject({
    id: token,
    /** Peers in the cohort, this one included. */
    peers: count,
    steps: count,
    resolved: count,
    /** Steps already succeeded when this peer (re)joined: who built them, or from memo. */
    succeeded: z
      .array(z.strictObject({ stepId: safeIdSchema, peerId: peerIdSchema.nullable(), fromMemo: z.boolean() }))
      .max(limits.maxSteps),
  }),
  /** How often the authority pings; a peer silent for two intervals is treated as gone. */
  pingIntervalMs: count,
  /** The authority's software (additive): the peer warns when its own version differs. */
  server: z.strictObject({ name, version: name }).optional(),
  /**
   * Why this peer is alone in its cohort when it could have had company (additive),
   * one sentence each: peers with the same schema id but another digest, or the
   * same repo and sha but another cache id.
   */
  alone: z.array(message).max(8).optional(),
});

/** A step of the cohort that succeeded, batched (what a `step.update` with state succeeded says). */
export const succeededStepSchema = z.strictObject({
  stepId: safeIdSchema,
  peerId: peerIdSchema.nullable(),
  fromMemo: z.boolean(),
  durationMs: durationMs.optional(),
});
/** Successes since the last frame, only to peers that said `coalescedUpdates` in their hello; oldest first. */
const succeededBatch = z.array(succeededStepSchema).max(limits.maxSteps).optional();

export const assignSchema = z.strictObject({
  type: z.literal('assign'),
  cohortId: token,
  stepId: safeIdSchema,
  leaseId: token,
  /** 1 for the first lease of the step, rising with every re-lease and backup. */
  attempt: count,
  /** A second copy of a step running far past its estimate; first success wins. */
  backup: z.boolean(),
  succeeded: succeededBatch,
});

export const waitSchema = z.strictObject({
  type: z.literal('wait'),
  cohortId: token,
  /** What is running and where (capped). */
  running: z
    .array(
      z.strictObject({
        stepId: safeIdSchema,
        peerId: peerIdSchema,
        /** How long that peer has held its lease, on the authority's clock, when this frame was sent (ms); absent from older authorities. */
        heldMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
      }),
    )
    .max(limits.maxWaitEntries),
  /** Steps not yet resolved. */
  unresolved: count,
  succeeded: succeededBatch,
});

export const stepUpdateSchema = z.strictObject({
  type: z.literal('step.update'),
  cohortId: token,
  stepId: safeIdSchema,
  state: stepStateSchema,
  /** Who built it (succeeded) or who failed it (failed); null when reused from memo. */
  peerId: peerIdSchema.nullable(),
  fromMemo: z.boolean(),
  durationMs: durationMs.optional(),
  exitCode: exitCode.optional(),
  logTail: logTail.optional(),
  /** Why a step failed without running (e.g. a step it needs failed). */
  reason: message.optional(),
});

/** Batched successes no `assign`, `wait` or `complete` carried within the coalescing window. */
export const stepUpdatesSchema = z.strictObject({
  type: z.literal('step.updates'),
  cohortId: token,
  succeeded: z.array(succeededStepSchema).min(1).max(limits.maxSteps),
});

export const abortSchema = z.strictObject({
  type: z.literal('abort'),
  stepId: safeIdSchema,
  leaseId: token,
  reason: z.enum(['superseded', 'cancelled', 'lease-lost']),
});

export const failedStepSchema = z.strictObject({
  stepId: safeIdSchema,
  peerId: peerIdSchema.nullable(),
  exitCode: exitCode,
  logTail: logTail.optional(),
  reason: message,
});

export const completeSchema = z.strictObject({
  type: z.literal('complete'),
  cohortId: token,
  outcome: z.enum(['succeeded', 'failed', 'cancelled']),
  summary: z.strictObject({
    builtHere: z.array(safeIdSchema).max(limits.maxSteps),
    /**
     * `durationMs` (additive): the build's duration as the authority measured it, sent only to peers whose
     * hello said `targetedUpdates` (they were not told of these steps as they finished).
     */
    builtByOthers: z.array(z.strictObject({ stepId: safeIdSchema, peerId: peerIdSchema, durationMs: durationMs.optional() })).max(limits.maxSteps),
    fromMemo: z.array(safeIdSchema).max(limits.maxSteps),
    failed: z.array(failedStepSchema).max(limits.maxSteps),
    /** Build time saved: seconds this peer did not spend building steps others built or the memo had. */
    savedSec: z.number().min(0),
    /** Seconds this peer spent building its own steps (build time). Optional: older authorities omit it. */
    builtSec: z.number().min(0).optional(),
    /** Seconds one peer would spend building every step alone, with measured durations where there are any. */
    aloneSec: z.number().min(0).optional(),
    /** Runner time: seconds from this peer joining the cohort to `complete`, building and waiting, on the authority's clock. */
    spentSec: z.number().min(0).optional(),
    /**
     * Steps no connected peer had the labels for (resolved `unshared`): nobody built them, the universe
     * build covers them. Additive, sent only when non-empty.
     */
    unshared: z.array(z.strictObject({ stepId: safeIdSchema, reason: message })).max(limits.maxSteps).optional(),
    /**
     * Steps still unresolved that this peer lacks the labels for, when it was told `complete` before its
     * cohort finished (it never waits on a step it could not run). Additive, sent only when non-empty.
     */
    notRunnable: z.array(z.strictObject({ stepId: safeIdSchema, requires: labelListSchema })).max(limits.maxSteps).optional(),
  }),
  succeeded: succeededBatch,
});

export const errorMessageSchema = z.strictObject({
  type: z.literal('error'),
  code: z.enum(errorCodeList),
  message,
  retryable: z.boolean(),
  stepId: safeIdSchema.optional(),
  leaseId: token.optional(),
});

export const serverMessageSchema = z.discriminatedUnion('type', [
  welcomeSchema,
  assignSchema,
  waitSchema,
  stepUpdateSchema,
  stepUpdatesSchema,
  abortSchema,
  completeSchema,
  errorMessageSchema,
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type Welcome = z.infer<typeof welcomeSchema>;
export type Assign = z.infer<typeof assignSchema>;
export type Wait = z.infer<typeof waitSchema>;
export type StepUpdate = z.infer<typeof stepUpdateSchema>;
export type StepUpdates = z.infer<typeof stepUpdatesSchema>;
export type SucceededStep = z.infer<typeof succeededStepSchema>;
export type Abort = z.infer<typeof abortSchema>;
export type Complete = z.infer<typeof completeSchema>;
export type ErrorMessage = z.infer<typeof errorMessageSchema>;
export type CompleteSummary = Complete['summary'];
