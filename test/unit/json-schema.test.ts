import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { schemaFileJsonSchemaText } from '../../shared/json-schema.js';

describe('schemas/taskshard.schema.json', () => {
  it('is the committed output of the zod schema (run `npm run schema:generate` when this fails)', () => {
    const committed = readFileSync(new URL('../../schemas/taskshard.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(schemaFileJsonSchemaText());
  });

  it('is referenced by the example schemas so editors complete fields', () => {
    for (const file of ['example.json', 'reference-form.json']) {
      const value = JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8')) as { $schema?: string };
      expect(value.$schema).toBe('./taskshard.schema.json');
    }
  });
});
