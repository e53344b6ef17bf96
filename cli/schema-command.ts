import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { schemaFileJsonSchemaText } from '../shared/json-schema.js';
import { checkSchemaFileText, unreadableSchemaFile } from '../shared/schema-validate.js';
import type { SchemaDef } from '../shared/schema-file.js';

import { exitInvalid } from './exit-codes.js';

export { exitInvalid };

export type LoadedSchema =
  | { ok: true; schema: SchemaDef; digest: string }
  | { ok: false; lines: string[] }
  | { ok: 'skipped'; reason: string };

/** The name `-` stands for stdin (then the schema needs its own "id"). */
const stdinName = '<stdin>';

/** Reads and validates one schema file (`-`: stdin); every problem comes back as one located line. */
export function loadSchemaFile(file: string): LoadedSchema {
  const name = file === '-' ? stdinName : file;
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    return { ok: false, lines: [unreadableSchemaFile(name, err)] };
  }
  const checked = checkSchemaFileText(name, text);
  if (checked.ok === 'json-schema') return { ok: 'skipped', reason: `a JSON Schema document (${checked.metaSchema}), not a taskshard schema` };
  return checked;
}

export function registerSchemaCommands(program: Command): void {
  const schema = program.command('schema').description('work with schema files');

  schema
    .command('validate')
    .description('check schema files (JSON; comments and trailing commas allowed); exit 0 when all are valid, 2 when any is not')
    .argument('<file...>', 'schema files to check; - reads one from stdin')
    .action((files: string[]) => {
      let invalid = 0;
      for (const file of files) {
        const loaded = loadSchemaFile(file);
        const shown = file === '-' ? stdinName : file;
        if (loaded.ok === 'skipped') {
          process.stdout.write(`skip ${shown}: ${loaded.reason}\n`);
        } else if (loaded.ok) {
          const { schema: def, digest } = loaded;
          const labelled = def.steps.filter((s) => s.requires !== undefined).map((s) => `${s.id} (${s.requires!.join(', ')})`);
          const needsLabels = labelled.length === 0 ? '' : `; steps that require labels: ${labelled.join(', ')}`;
          process.stdout.write(`ok ${shown}: schema "${def.id}", ${def.steps.length} steps, ${digest}${needsLabels}\n`);
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
    .description('print the JSON Schema for schema files, for editors: taskshard schema json-schema > taskshard.schema.json')
    .action(() => {
      process.stdout.write(schemaFileJsonSchemaText());
    });
}
