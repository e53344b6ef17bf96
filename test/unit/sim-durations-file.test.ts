import { describe, expect, it } from 'vitest';
import { parseDurationsText } from '../../server/sim/durations-file.js';
import { formatSchemaProblem } from '../../shared/schema-validate.js';
import { dagSchema } from '../helpers/schemas.js';

const schema = dagSchema({ common: [], planning: ['common'] });

function lines(text: string): string[] {
  const result = parseDurationsText(text, schema);
  if (result.ok) return [];
  return result.problems.map((p) => formatSchemaProblem('d.json', p));
}

describe('durations file', () => {
  it('accepts step id -> seconds for known steps (a subset is fine)', () => {
    const result = parseDurationsText('{ "common": 600, "planning": 1.5 }', schema);
    expect(result.ok && [...result.durationsSec]).toEqual([['common', 600], ['planning', 1.5]]);
    expect(parseDurationsText('{}', schema).ok).toBe(true);
  });

  it('a step the schema no longer has is a located warning and is ignored, not an error', () => {
    const result = parseDurationsText('{\n  "common": 600,\n  "comon": 5,\n  "gone": 7\n}', schema);
    if (!result.ok) throw new Error('expected ok');
    expect([...result.durationsSec]).toEqual([['common', 600]]);
    expect(result.warnings.map((p) => formatSchemaProblem('d.json', p))).toEqual([
      'd.json:3:3: comon: schema "dag" has no step "comon" (did you mean "common"?): a removed step? ignored [unknown-step]',
      'd.json:4:3: gone: schema "dag" has no step "gone": a removed step? ignored [unknown-step]',
    ]);
    expect(parseDurationsText('{ "common": 1 }', schema)).toMatchObject({ ok: true, warnings: [] });
  });

  it('names file, line:column, path and rule for every problem', () => {
    expect(lines('{\n  "common": 600,\n  "comon": 5,\n  "planning": -1\n}')).toEqual(['d.json:4:3: planning: must be greater than 0 (seconds) [min]']);
    expect(lines('{ "common": "600" }')).toEqual(['d.json:1:3: common: expected number, got string "600" [type]']);
    expect(lines('[1, 2]')).toEqual(['d.json:1:1: (root): expected an object of step id to seconds, e.g. {"build": 120} [type]']);
    expect(lines('{ "common": 1,\n "common": 2 }')).toEqual(['d.json:2:2: common: key "common" appears more than once in this object [duplicate-key]']);
    expect(lines('{ "common": 1, }')[0]).toMatch(/^d\.json:1:\d+: JSON syntax error/);
  });
});
