import { createHash } from 'node:crypto';
import { limits } from '../../shared/limits.js';
import { safeIdPattern } from '../../shared/ids.js';
import { schemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef, StepDef } from '../../shared/schema-file.js';
import type { TdInit } from '../../shared/task-director-protocol.js';
import type { Registration } from '../core/records.js';

/**
 * How a Task Director INIT becomes a taskshard registration, deterministically
 * (the same INIT always maps to the same registration and schema digest):
 *
 * - repos sorted by name; `repo` is the name when there is one repo, else the
 *   JSON list of names; `baseRef` likewise with the base refs in that order;
 * - `patchsets` = every `patchset` and `additional_patchsets` entry, each
 *   prefixed with its repo (`<repo>:<patchset>`), so equal shas in different
 *   repos never count as shared;
 * - pipeline type `dependent` (the original's grouping: most patchsets in
 *   common, at least one), `isolated` = `complex_patchset`, cache id as sent;
 * - schema: id = `schema_id` (or a stable safe id derived from it), a
 *   placeholder universe, steps "0".."N-1" with targets "task-0".. — so the
 *   digest depends only on `schema_id` and `total_tasks`.
 *
 * `repos` lists every repo with its base ref, so a joiner whose repos are a
 * subset of a group's (same base refs) joins it, as in the original.
 */
export interface TaskDirectorJoin {
  readonly registration: Registration;
  readonly schema: SchemaDef;
  readonly digest: string;
}

export const taskDirectorPipelineName = 'task-director';

/** Placeholder universe: Task Director clients build their own final target, the authority never names it. */
export const taskDirectorUniverse = 'task-director:universe';

export function taskDirectorJoin(init: TdInit): TaskDirectorJoin {
  const repos = Object.keys(init.repo_state).sort();
  const entries = repos.map((name) => init.repo_state[name]!);
  const patchsets: string[] = [];
  repos.forEach((name, i) => {
    const entry = entries[i]!;
    patchsets.push(`${name}:${entry.patchset}`);
    for (const extra of entry.additional_patchsets ?? []) patchsets.push(`${name}:${extra}`);
  });
  const { schema, digest } = digestedSchema(init.schema_id, init.total_tasks);
  return {
    registration: {
      repo: repos.length === 1 ? repos[0]! : JSON.stringify(repos),
      baseRef: repos.length === 1 ? entries[0]!.base_ref : JSON.stringify(entries.map((e) => e.base_ref)),
      baseSha: null,
      patchsets,
      changeRef: null,
      pipelineName: taskDirectorPipelineName,
      pipelineType: 'dependent',
      isolated: init.complex_patchset,
      cacheId: init.cache_id,
      repos: repos.map((repo, i) => ({ repo, baseRef: entries[i]!.base_ref })),
    },
    schema,
    digest,
  };
}

/**
 * The schema and digest of (`schema_id`, `total_tasks`), built once: every client of a
 * group sends the same two, and building and digesting 1,000 steps took longer than
 * the rest of an INIT. The least recently used of at most 64 go first; callers share
 * the objects and never change them (frozen).
 */
const digested = new Map<string, { readonly schema: SchemaDef; readonly digest: string }>();
const maxDigested = 64;

function digestedSchema(schemaId: string, totalTasks: number): { readonly schema: SchemaDef; readonly digest: string } {
  const key = `${totalTasks}:${schemaId}`;
  let entry = digested.get(key);
  if (entry !== undefined) {
    digested.delete(key);
  } else {
    const schema = taskDirectorSchema(schemaId, totalTasks);
    for (const step of schema.steps) {
      Object.freeze(step.needs);
      Object.freeze(step);
    }
    Object.freeze(schema.steps);
    entry = Object.freeze({ schema: Object.freeze(schema), digest: schemaDigest(schema) });
    if (digested.size >= maxDigested) digested.delete(digested.keys().next().value!);
  }
  digested.set(key, entry);
  return entry;
}

/** The schema of `totalTasks` independent steps "0".."N-1". */
export function taskDirectorSchema(schemaId: string, totalTasks: number): SchemaDef {
  const steps: StepDef[] = [];
  for (let i = 0; i < totalTasks; i++) steps.push({ id: String(i), target: `task-${i}`, needs: [] });
  return { id: coreSchemaId(schemaId), universe: taskDirectorUniverse, steps };
}

/**
 * The original's schema names are free text; taskshard schema ids are safe ids.
 * A name that already is one is kept; any other maps to `td.<hash>`, stable
 * across restarts and processes.
 */
export function coreSchemaId(schemaId: string): string {
  if (schemaId.length <= limits.maxIdLength && safeIdPattern.test(schemaId)) return schemaId;
  return `td.${createHash('sha256').update(schemaId).digest('hex').slice(0, 32)}`;
}
