import { z } from 'zod';
import { schemaFileSchema } from './schema-file.js';

/** Where editors can fetch the generated JSON Schema once published. */
export const jsonSchemaId = 'https://taskshard.dev/schemas/taskshard.schema.json';

/**
 * The JSON Schema for schema files, generated from the zod schema so the two
 * cannot drift (`test/unit/json-schema.test.ts` fails when the committed copy is stale).
 * Graph rules (unknown needs, cycles) are beyond JSON Schema; `taskshard schema validate` checks them.
 */
export function schemaFileJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(schemaFileSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { ...generated, $id: jsonSchemaId, title: 'taskshard schema file' };
}

/** The file content of `schemas/taskshard.schema.json`. */
export function schemaFileJsonSchemaText(): string {
  return `${JSON.stringify(schemaFileJsonSchema(), null, 2)}\n`;
}
