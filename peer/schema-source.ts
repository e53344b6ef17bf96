import { readFileSync } from 'node:fs';
import { formatJsonPath } from '../shared/json-text.js';
import type { SchemaDef } from '../shared/schema-file.js';
import { checkSchemaFileText, unreadableSchemaFile, validateSchemaValue } from '../shared/schema-validate.js';

/**
 * The peer's schema, from a file (with the same located one-line messages as
 * `taskshard schema validate`) or from an object a library caller passes.
 */
export type SchemaSource = { readonly ok: true; readonly schema: SchemaDef; readonly digest: string } | { readonly ok: false; readonly problems: readonly string[] };

export function loadPeerSchema(source: string | Readonly<Record<string, unknown>>): SchemaSource {
  if (typeof source !== 'string') {
    const result = validateSchemaValue(source);
    if (result.ok) return { ok: true, schema: result.schema, digest: result.digest };
    return { ok: false, problems: result.problems.map((p) => `schema.${formatJsonPath(p.path)}: ${p.message} [${p.rule}]`) };
  }
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    return { ok: false, problems: [unreadableSchemaFile(source, err)] };
  }
  const checked = checkSchemaFileText(source, text);
  if (checked.ok === 'json-schema') {
    return { ok: false, problems: [`${source}: this is a JSON Schema document (such as taskshard.schema.json), not a taskshard schema [read]`] };
  }
  return checked.ok ? checked : { ok: false, problems: checked.lines };
}
