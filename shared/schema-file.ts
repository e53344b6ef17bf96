import { z } from 'zod';
import { boundedText, safeIdSchema } from './ids.js';
import { labelListSchema } from './labels.js';
import { limits } from './limits.js';

/**
 * The schema-file format (DESIGN §4). Two accepted forms:
 * - list form: `{ "id"?, "universe", "steps": [{ "id", "target", "needs"?, "estimateSec"?, "requires"? }] }`
 * - map form (the original Task Director's): `{ "universe", "steps": { "1": "//a/...", ... } }`,
 *   whose keys become step ids in document order.
 * Both normalize to {@link SchemaDef}. Graph rules (duplicates, unknown needs,
 * cycles) live in `schema-graph.ts`; this file checks shapes and sizes only.
 */

export const targetSchema = boundedText(limits.maxTargetLength, 'a target');

export const estimateSecSchema = z
  .number()
  .positive('must be greater than 0')
  .max(limits.maxEstimateSec, `must be at most ${limits.maxEstimateSec} (one week)`);

export const stepListEntrySchema = z
  .strictObject({
    id: safeIdSchema.describe('Step id, unique in the schema; "universe" is reserved.'),
    target: targetSchema.describe('Build target pattern this step builds, e.g. //my_universe/common/...'),
    needs: z
      .array(safeIdSchema)
      .max(limits.maxNeedsPerStep, `must list at most ${limits.maxNeedsPerStep} steps`)
      .optional()
      .describe('Ids of steps that must succeed before this one starts.'),
    estimateSec: estimateSecSchema
      .optional()
      .describe('Expected duration in seconds, used for priority until real durations are recorded.'),
    requires: labelListSchema
      .optional()
      .describe('Labels a peer must have to build this step, e.g. ["gpu", "arch:arm64"]; peers without them never get it.'),
  })
  .describe('One shareable step.');

export const stepListSchema = z
  .array(stepListEntrySchema)
  .min(1, 'must list at least one step')
  .max(limits.maxSteps, `must list at most ${limits.maxSteps} steps`);

export const stepMapSchema = z
  .record(safeIdSchema, targetSchema)
  .describe('The original map form: step id -> target, in document order.');

/** The whole file, as editors see it (generated into schemas/taskshard.schema.json). */
export const schemaFileSchema = z
  .strictObject({
    $schema: z.string().max(1024).optional().describe('Path or URL of taskshard.schema.json, for editors.'),
    id: safeIdSchema.optional().describe('Schema id; defaults to the file name without .json.'),
    universe: targetSchema.describe('The final target every peer builds itself once its cohort is complete.'),
    steps: z.union([stepListSchema, stepMapSchema]).describe('Steps as a list (preferred) or as the original id -> target map.'),
  })
  .describe('A taskshard schema: a universe target plus the steps peers share.');

/** The top level with `steps` left for a second, form-specific pass (for clearer messages). */
export const schemaFileEnvelopeSchema = schemaFileSchema.extend({ steps: z.unknown() });

export type SchemaFile = z.input<typeof schemaFileSchema>;

/** A normalized step: `needs` always present; `requires` only when it lists a label. */
export interface StepDef {
  readonly id: string;
  readonly target: string;
  readonly needs: readonly string[];
  readonly estimateSec?: number;
  /** Labels a peer must have to build it (shared/labels.ts); absent: any peer. */
  readonly requires?: readonly string[];
}

/** A normalized, validated schema. */
export interface SchemaDef {
  readonly id: string;
  readonly universe: string;
  readonly steps: readonly StepDef[];
}
