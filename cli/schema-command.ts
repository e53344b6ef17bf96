import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { schemaFileJsonSchemaText } from '../shared/json-schema.js';
import { checkSchemaFileText, unreadableSchemaFile } from '../shared/schema-validate.js';
import type { SchemaDef } from '../shared/schema-file.js';

/** Exit code for invalid input (usage or schema errors). */
export const exitInvalid = 2;

export type LoadedSchema =
  | { ok: true; schema: SchemaDef; digest: string }
  | { ok: false; lines: string[] }
  | { ok: 'skipped'; reason: string };

/** Reads and validates one schema file; every problem comes back as one located line. */
export function loadSchemaFile(file: string): LoadedSchema {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, lines: [unreadableSchemaFile(file, err)] };
  }
  const checked = checkSchemaFileText(file, text);
  if (checked.ok === 'json-schema') return { ok: 'skipped', reason: `a JSON Schema document (${checked.metaSchema}), not a taskshard schema` };
  return checked;
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
