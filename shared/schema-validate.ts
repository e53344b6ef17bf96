import { safeIdSchema } from './ids.js';
import { formatJsonPath, parseJsoncText, type JsonPath, type TextPosition } from './json-text.js';
import { schemaDigest } from './schema-digest.js';
import {
  schemaFileEnvelopeSchema,
  stepListSchema,
  stepMapSchema,
  type SchemaDef,
  type StepDef,
} from './schema-file.js';
import { checkStepGraph, type LocatedStep } from './schema-graph.js';
import { describeValue, problemsFromZod, type LocatedProblem } from './zod-issues.js';

/**
 * Validating schema files: shape (zod), then graph rules, then the digest.
 * `validateSchemaText` adds line:column to every problem; `validateSchemaValue`
 * works on an already-parsed value (the server uses it on `hello`).
 */

export interface SchemaProblem extends LocatedProblem {
  /** Where the path is in the file, when validating text. */
  readonly position: TextPosition | null;
}

export type SchemaValidation =
  | { readonly ok: true; readonly schema: SchemaDef; readonly digest: string }
  | { readonly ok: false; readonly problems: readonly SchemaProblem[] };

export interface SchemaValueOptions {
  /** Id used when the file has none: the file's base name. */
  readonly defaultId?: string;
  /** Map-form key order as written in the file; defaults to `Object.keys`. */
  readonly keysInOrder?: (path: JsonPath) => string[] | null;
}

export function validateSchemaValue(value: unknown, options: SchemaValueOptions = {}): SchemaValidation {
  const fail = (problems: LocatedProblem[]): SchemaValidation => ({
    ok: false,
    problems: problems.map((p) => ({ ...p, position: null })),
  });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail([{ path: [], rule: 'type', message: `expected an object with "universe" and "steps", got ${describeValue(value)}` }]);
  }
  const envelope = schemaFileEnvelopeSchema.safeParse(value, { reportInput: true });
  const problems: LocatedProblem[] = envelope.success ? [] : problemsFromZod(envelope.error);

  let id: string | undefined;
  if (envelope.success) {
    id = envelope.data.id;
    if (id === undefined) {
      if (options.defaultId === undefined) {
        problems.push({ path: ['id'], rule: 'required', message: 'is required (no file name to default to)' });
      } else {
        const fromName = safeIdSchema.safeParse(options.defaultId);
        if (fromName.success) id = fromName.data;
        else
          problems.push({
            path: ['id'],
            rule: 'default-id',
            message: `no "id" given, and the file name "${options.defaultId}" is not a valid id (${fromName.error.issues[0]?.message ?? 'invalid'}); add an "id"`,
          });
      }
    }
  }

  const rawSteps = (value as Record<string, unknown>).steps;
  const normalized = rawSteps === undefined ? null : normalizeSteps(rawSteps, options, problems);
  // Graph rules run even next to shape problems, over every step that has an id, so one pass shows everything.
  if (normalized) problems.push(...checkStepGraph(normalized.steps));
  const located = normalized?.complete ? normalized.steps : null;
  if (problems.length > 0 || !envelope.success || id === undefined || !located) return fail(problems);

  const schema: SchemaDef = { id, universe: envelope.data.universe, steps: located.map((l) => l.step) };
  return { ok: true, schema, digest: schemaDigest(schema) };
}

/** The steps in normalized form; `complete` is false when some had shape problems (then only those with an id are here, for graph checks). */
interface NormalizedSteps {
  readonly steps: LocatedStep[];
  readonly complete: boolean;
}

function normalizeSteps(raw: unknown, options: SchemaValueOptions, problems: LocatedProblem[]): NormalizedSteps | null {
  if (Array.isArray(raw)) {
    const parsed = stepListSchema.safeParse(raw, { reportInput: true });
    if (parsed.success) {
      const steps = parsed.data.map((entry, i) => ({
        step: toStepDef(entry.id, entry.target, entry.needs ?? [], entry.estimateSec, entry.requires),
        path: ['steps', i],
        needsPath: ['steps', i, 'needs'],
      }));
      return { steps, complete: true };
    }
    problems.push(...problemsFromZod(parsed.error, ['steps']).map((p) => namingStep(p, raw)));
    const steps: LocatedStep[] = [];
    raw.forEach((entry: unknown, i) => {
      if (typeof entry !== 'object' || entry === null) return;
      const { id, target, needs } = entry as Record<string, unknown>;
      if (typeof id !== 'string') return;
      const needList = Array.isArray(needs) && needs.every((n) => typeof n === 'string') ? (needs as string[]) : [];
      steps.push({ step: toStepDef(id, typeof target === 'string' ? target : '', needList, undefined), path: ['steps', i], needsPath: ['steps', i, 'needs'] });
    });
    return { steps, complete: false };
  }
  if (typeof raw === 'object' && raw !== null) {
    const keys = options.keysInOrder?.(['steps']) ?? Object.keys(raw);
    const parsed = stepMapSchema.safeParse(raw, { reportInput: true });
    if (!parsed.success) problems.push(...problemsFromZod(parsed.error, ['steps']));
    if (keys.length === 0) {
      problems.push({ path: ['steps'], rule: 'min', message: 'must list at least one step' });
      return null;
    }
    const map = raw as Record<string, unknown>;
    const steps = keys.map((key) => ({ step: toStepDef(key, typeof map[key] === 'string' ? (map[key] as string) : '', [], undefined), path: ['steps', key], needsPath: null }));
    return { steps, complete: parsed.success };
  }
  problems.push({
    path: ['steps'],
    rule: 'type',
    message: `expected a list of steps or a map of step id to target, got ${describeValue(raw)}`,
  });
  return null;
}

function toStepDef(id: string, target: string, needs: readonly string[], estimateSec: number | undefined, requires?: readonly string[]): StepDef {
  return {
    id,
    target,
    needs,
    ...(estimateSec === undefined ? {} : { estimateSec }),
    // `requires: []` is the same as no requires (and keeps the digest of a schema without labels).
    ...(requires === undefined || requires.length === 0 ? {} : { requires }),
  };
}

/** A problem inside a step's `requires` also names the step by id: `step "train": label "gp u" must use ...`. */
function namingStep(problem: LocatedProblem, raw: readonly unknown[]): LocatedProblem {
  const [root, index, field] = problem.path;
  if (root !== 'steps' || typeof index !== 'number' || field !== 'requires') return problem;
  const entry = raw[index];
  const id = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>).id : undefined;
  return typeof id === 'string' ? { ...problem, message: `step ${JSON.stringify(id)}: ${problem.message}` } : problem;
}

/**
 * Validates schema-file text: JSON syntax (with line:column; comments and
 * trailing commas are allowed, as in tsconfig.json), duplicate keys, then the
 * schema rules. The digest comes from the normalized schema, so formatting and
 * comments never change it.
 */
export function validateSchemaText(text: string, options: { readonly defaultId?: string; readonly fileName?: string } = {}): SchemaValidation {
  const parsed = parseJsoncText(text);
  if (!parsed.ok) {
    const yaml = looksLikeYaml(text, options.fileName);
    const message = yaml ? `${parsed.message}; schema files are JSON (comments and trailing commas are allowed), and this looks like YAML: convert it to JSON` : parsed.message;
    return { ok: false, problems: [{ path: [], rule: 'json-syntax', message, position: parsed.position }] };
  }
  const { doc } = parsed;
  const duplicates = doc.duplicateKeys();
  if (duplicates.length > 0) {
    return {
      ok: false,
      problems: duplicates.map((d) => ({
        path: d.path,
        rule: 'duplicate-key',
        message: `key "${d.key}" appears more than once in this object`,
        position: d.position,
      })),
    };
  }
  const result = validateSchemaValue(doc.value, { ...options, keysInOrder: (path) => doc.keysInDocumentOrder(path) });
  if (result.ok) return result;
  return { ok: false, problems: result.problems.map((p) => ({ ...p, position: locateNearest(doc.locate, p.path) })) };
}

/** A `.yaml`/`.yml` name, a `---` document start, or a first line such as `universe: //...`. */
function looksLikeYaml(text: string, fileName: string | undefined): boolean {
  if (fileName !== undefined && /\.ya?ml$/i.test(fileName)) return true;
  const first = text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  return first !== undefined && (first === '---' || /^[A-Za-z_$][\w$-]*\s*:(\s|$)/.test(first) || /^-\s/.test(first));
}

/** The position of `path`, or of its nearest existing ancestor (a missing field points at its object). */
function locateNearest(locate: (path: JsonPath) => TextPosition | null, path: JsonPath): TextPosition | null {
  for (let n = path.length; n >= 0; n--) {
    const at = locate(path.slice(0, n));
    if (at) return at;
  }
  return null;
}

/** One line: `file:line:col: path: message [rule]`. */
export function formatSchemaProblem(fileName: string, problem: SchemaProblem): string {
  const where = problem.position ? `${fileName}:${problem.position.line}:${problem.position.column}` : fileName;
  const path = problem.rule === 'json-syntax' ? '' : `${formatJsonPath(problem.path)}: `;
  return `${where}: ${path}${problem.message} [${problem.rule}]`;
}

/** The default schema id for a file: its base name without `.json` or `.jsonc`. */
export function defaultSchemaIdFor(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.jsonc?$/i, '');
}

/** What a schema file's text amounts to, with every problem as one located line. */
export type SchemaFileCheck =
  | { readonly ok: true; readonly schema: SchemaDef; readonly digest: string }
  | { readonly ok: false; readonly lines: string[] }
  /** A JSON Schema document (such as schemas/taskshard.schema.json), not a taskshard schema. */
  | { readonly ok: 'json-schema'; readonly metaSchema: string };

/** Checks the text of the file `fileName` (read by the caller: shared/ does no I/O). */
export function checkSchemaFileText(fileName: string, text: string): SchemaFileCheck {
  const meta = /^\s*\{\s*"\$schema"\s*:\s*"(https?:\/\/json-schema\.org\/[^"]*)"/.exec(text);
  if (meta) return { ok: 'json-schema', metaSchema: meta[1]! };
  // Text from stdin (`<stdin>`) has no file name to take an id from.
  const result = validateSchemaText(text, fileName === '<stdin>' ? { fileName } : { defaultId: defaultSchemaIdFor(fileName), fileName });
  if (result.ok) return { ok: true, schema: result.schema, digest: result.digest };
  return { ok: false, lines: result.problems.map((p) => formatSchemaProblem(fileName, p)) };
}

/** The one-line message for a schema file that could not be read. */
export function unreadableSchemaFile(fileName: string, err: unknown): string {
  const code = (err as { code?: string }).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
  return `${fileName}: cannot read: ${why} [read]`;
}
