import { z } from 'zod';
import { limits } from '../../shared/limits.js';
import { parseJsonText, type JsonDocument, type JsonPath } from '../../shared/json-text.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { closestId } from '../../shared/schema-graph.js';
import type { SchemaProblem } from '../../shared/schema-validate.js';
import { problemsFromZod, type LocatedProblem } from '../../shared/zod-issues.js';

/**
 * A durations file: measured step durations for simulation and `taskshard plan`,
 * `{ "<step id>": <seconds>, ... }`, as `taskshard durations export` writes it.
 * Steps not listed fall back to `estimateSec`, then the core's default. A key
 * the schema has no step for (a step removed since the export) is a warning:
 * it is ignored. Problems and warnings come back located (path, rule,
 * line:column) like schema problems, so `formatSchemaProblem` prints them.
 */
export const durationSecSchema = z
  .number()
  .positive('must be greater than 0 (seconds)')
  .max(limits.maxEstimateSec, `must be at most ${limits.maxEstimateSec} seconds (one week)`);

export const durationsFileSchema = z.record(z.string(), durationSecSchema).describe('Step id -> measured duration in seconds.');

export type DurationsValidation =
  | { readonly ok: true; readonly durationsSec: ReadonlyMap<string, number>; readonly warnings: readonly SchemaProblem[] }
  | { readonly ok: false; readonly problems: readonly SchemaProblem[] };

/**
 * Checks a parsed durations value against the schema's step ids; paths are
 * relative to `prefix`. Keys naming no step of the schema come back in
 * `unknownSteps` (and are left out of `durationsSec`); the caller decides
 * whether that is a warning or an error.
 */
export function checkDurationsValue(
  value: unknown,
  schema: SchemaDef,
  prefix: JsonPath = [],
): { ok: true; durationsSec: Map<string, number>; unknownSteps: LocatedProblem[] } | { ok: false; problems: LocatedProblem[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problems: [{ path: prefix, rule: 'type', message: 'expected an object of step id to seconds, e.g. {"build": 120}' }] };
  }
  const parsed = durationsFileSchema.safeParse(value, { reportInput: true });
  const problems: LocatedProblem[] = parsed.success ? [] : problemsFromZod(parsed.error, prefix);
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  const known = new Set(schema.steps.map((s) => s.id));
  const unknownSteps: LocatedProblem[] = [];
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      const hint = closestId(key, [...known]);
      unknownSteps.push({
        path: [...prefix, key],
        rule: 'unknown-step',
        message: `schema "${schema.id}" has no step "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
      });
    }
  }
  return { ok: true, durationsSec: new Map(Object.entries(parsed.data).filter(([id]) => known.has(id))), unknownSteps };
}

/** Parses and checks durations-file text; every problem has line:column where it can. */
export function parseDurationsText(text: string, schema: SchemaDef): DurationsValidation {
  const parsed = parseJsonText(text);
  if (!parsed.ok) return { ok: false, problems: [{ path: [], rule: 'json-syntax', message: parsed.message, position: parsed.position }] };
  const duplicates = parsed.doc.duplicateKeys();
  if (duplicates.length > 0) {
    return { ok: false, problems: duplicates.map((d) => ({ path: d.path, rule: 'duplicate-key', message: `key "${d.key}" appears more than once in this object`, position: d.position })) };
  }
  const checked = checkDurationsValue(parsed.doc.value, schema);
  if (!checked.ok) return { ok: false, problems: locate(parsed.doc, checked.problems) };
  const warnings = locate(
    parsed.doc,
    checked.unknownSteps.map((p) => ({ ...p, message: `${p.message}: a removed step? ignored` })),
  );
  return { ok: true, durationsSec: checked.durationsSec, warnings };
}

/** Adds the nearest existing position to each problem. */
export function locate(doc: JsonDocument, problems: readonly LocatedProblem[]): SchemaProblem[] {
  return problems.map((p) => {
    for (let n = p.path.length; n >= 0; n--) {
      const at = doc.locate(p.path.slice(0, n));
      if (at) return { ...p, position: at };
    }
    return { ...p, position: null };
  });
}
