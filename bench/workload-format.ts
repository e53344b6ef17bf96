import { z } from 'zod';
import { boundedText, safeIdSchema } from '../shared/ids.js';
import { labelListSchema } from '../shared/labels.js';
import { limits } from '../shared/limits.js';

/**
 * The workload file format of `npm run bench:sched` (bench/workloads/*.json).
 *
 * ```json
 * {
 *   "name": "ci-day",                       // safe id, shown in the table
 *   "description": "what it models",
 *   "seed": 7,                              // drives jitter and arrival spread (default 1)
 *   "schemaFile": "../../schemas/example.json",   // or "schema": { inline taskshard schema }
 *   "durationsSec": { "protos": 240 },      // true durations; missing steps use estimateSec, then 60 s
 *   "jitter": 0.15,                         // each cohort's step runs duration × (1 ± jitter) (default 0)
 *   "seedDurations": false,                 // core starts with the true durations recorded (default false)
 *   "universeSec": 0,                       // each peer's final universe build, counted in runner time (default 0)
 *   "groups": [                             // peers that share a source state (one PR's CI jobs)
 *     { "name": "pr-01", "peers": 3, "atSec": 0, "spreadSec": 60,
 *       "pipeline": "independent", "patchsets": ["refs/changes/01/1"],
 *       "labels": ["arch:x64"], "peerLabels": [["gpu"]] }  // optional: every peer's labels; peer 1 also has gpu
 *   ]
 * }
 * ```
 *
 * A group's peers are `<name>-1..N`, arriving uniformly in
 * `[atSec, atSec + spreadSec)`. `patchsets` defaults to `["refs/changes/<name>"]`;
 * `pipeline: "dependent"` stacks changes (a gate queue), so groups whose patchsets
 * overlap join one cohort while it is open.
 */

export const maxWorkloadPeers = 10_000;

export const workloadGroupSchema = z.strictObject({
  name: safeIdSchema.describe('Group name; peer ids are <name>-1..N.'),
  peers: z.number().int().min(1).max(1000),
  atSec: z.number().min(0).max(30 * 24 * 3600),
  spreadSec: z.number().min(0).max(24 * 3600).optional(),
  pipeline: z.enum(['independent', 'dependent']).optional(),
  patchsets: z.array(boundedText(limits.maxRefLength, 'a ref')).min(1).max(limits.maxPatchsets).optional(),
  baseSha: z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a hex commit sha (7 to 64 lowercase hex digits)').optional(),
  isolated: z.boolean().optional(),
  /** Labels of every peer in the group (`["arch:x64"]`). */
  labels: labelListSchema.optional(),
  /** More labels for peer 1, 2, ... of the group (`[["gpu"]]`: one GPU runner); peers past the end get none. */
  peerLabels: z.array(labelListSchema).max(1000).optional(),
});

export const workloadFileSchema = z.strictObject({
  $comment: z.string().max(4096).optional(),
  name: safeIdSchema,
  description: z.string().min(1).max(1000),
  seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  schema: z.unknown().optional(),
  schemaFile: z.string().min(1).max(1024).optional(),
  durationsSec: z.unknown().optional(),
  jitter: z.number().min(0).max(0.9).optional(),
  seedDurations: z.boolean().optional(),
  universeSec: z.number().min(0).max(limits.maxEstimateSec).optional(),
  groups: z.array(workloadGroupSchema).min(1).max(1000),
});

export type WorkloadFile = z.infer<typeof workloadFileSchema>;
export type WorkloadGroup = z.infer<typeof workloadGroupSchema>;
