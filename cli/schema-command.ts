import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { schemaFileJsonSchemaText } from '../shared/json-schema.js';
import {
  defaultSchemaIdFor,
  formatSchemaProblem,
  validateSchemaText,
  type SchemaValidation,
} from '../shared/schema-validate.js';
import type { SchemaDef } from '../shared/schema-file.js';

/** Exit code for invalid input (usage or schema errors). */
export const exitInvalid = 2;

export type LoadedSchema =
  | { ok: true; schema: SchemaDef; digest: string }
  | { ok: false; lines: string[] }
  | { ok: 'skipped'; reason: string };

/** A JSON Schema document (such as schemas/taskshard.schema.json) declares a json-schema.org meta-schema. */
function jsonSchemaMetaOf(text: string): string | null {
  const match = /^\s*\{\s*"\$schema"\s*:\s*"(https?:\/\/json-schema\.org\/[^"]*)"/.exec(text);
  return match ? match[1]! : null;
}

/** Reads and validates one schema file; every problem comes back as one located line. */
export function loadSchemaFile(file: string): LoadedSchema {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    return { ok: false, lines: [`${file}: cannot read: ${why} [read]`] };
  }
  const meta = jsonSchemaMetaOf(text);
  if (meta) return { ok: 'skipped', reason: `a JSON Schema document (${meta}), not a taskshard schema` };
  const result: SchemaValidation = validateSchemaText(text, { defaultId: defaultSchemaIdFor(file) });
  if (result.ok) return { ok: true, schema: result.schema, digest: result.digest };
  return { ok: false, lines: result.problems.map((p) => formatSchemaProblem(file, p)) };
}

export function registerSchemaCommands(program: Command): void {
  const schema = program.command('schema').description('work with schema files');

  schema
    .command('validate')
    .description('check schema files; exit 0 when all are valid, 2 when any is not')
    .argument('<file...>', 'schema files to check')
    .action((files: string[]) => {
      let invalid = 0;
      for (const file of files) {
        const loaded = loadSchemaFile(file);
        if (loaded.ok === 'skipped') {
          process.stdout.write(`skip ${file}: ${loaded.reason}\n`);
        } else if (loaded.ok) {
          const { schema: def, digest } = loaded;
          process.stdout.write(`ok ${file}: schema "${def.id}", ${def.steps.length} steps, ${digest}\n`);
        } else {
          invalid++;
          for (const line of loaded.lines) process.stderr.write(`${line}\n`);
        }
      }
      if (invalid > 0) {
        process.stderr.write(`${invalid} of ${files.length} schema files invalid\n`);
        process.exitCode = exitInvalid;
      }
    });

  schema
    .command('json-schema')
    .description('print the JSON Schema for schema files (what schemas/taskshard.schema.json holds)')
    .action(() => {
      process.stdout.write(schemaFileJsonSchemaText());
    });
}
