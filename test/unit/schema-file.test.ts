import { describe, expect, it } from 'vitest';
import { limits } from '../../shared/limits.js';
import {
  defaultSchemaIdFor,
  formatSchemaProblem,
  validateSchemaText,
  validateSchemaValue,
  type SchemaValidation,
} from '../../shared/schema-validate.js';

const listForm = {
  id: 'mono',
  universe: '//my_universe/...',
  steps: [
    { id: 'common', target: '//my_universe/common/...', estimateSec: 600 },
    { id: 'planning', target: '//my_universe/planning/...', needs: ['common'] },
    { id: 'perception', target: '//my_universe/perception/...' },
    { id: 'test', target: '//my_universe/test/...' },
  ],
};

function text(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** The single problem line for an invalid schema text, as `schema validate` prints it. */
function problemLines(result: SchemaValidation, file = 'x.json'): string[] {
  if (result.ok) throw new Error('expected the schema to be invalid');
  return result.problems.map((p) => formatSchemaProblem(file, p));
}

function withSteps(steps: unknown): string {
  return text({ universe: '//u/...', steps });
}

describe('valid schema files', () => {
  it('accepts the list form and keeps order, needs and estimates', () => {
    const result = validateSchemaText(text(listForm));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.schema.id).toBe('mono');
    expect(result.schema.steps.map((s) => s.id)).toEqual(['common', 'planning', 'perception', 'test']);
    expect(result.schema.steps[1]!.needs).toEqual(['common']);
    expect(result.schema.steps[0]!.estimateSec).toBe(600);
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('accepts the map form with keys as ids in document order', () => {
    const raw = '{"universe":"//u/...","steps":{"b":"//b/...","10":"//ten/...","2":"//two/..."}}';
    const result = validateSchemaText(raw, { defaultId: 'ref' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    // JSON.parse would order integer-like keys first; the file's order wins.
    expect(result.schema.steps.map((s) => s.id)).toEqual(['b', '10', '2']);
    expect(result.schema.steps.every((s) => s.needs.length === 0)).toBe(true);
  });

  it('defaults the id to the file base name and allows $schema', () => {
    const raw = text({ $schema: './taskshard.schema.json', universe: '//u/...', steps: [{ id: 'a', target: '//a' }] });
    const result = validateSchemaText(raw, { defaultId: defaultSchemaIdFor('dir/my-schema.json') });
    expect(result.ok && result.schema.id).toBe('my-schema');
  });

  it('validates a chain of the maximum step count without recursion limits', () => {
    const steps = Array.from({ length: limits.maxSteps }, (_, i) => ({
      id: `s${i}`,
      target: `//s${i}`,
      ...(i > 0 ? { needs: [`s${i - 1}`] } : {}),
    }));
    expect(validateSchemaValue({ id: 'chain', universe: '//u', steps }).ok).toBe(true);
  });

  it('skips nothing: a BOM at the start is accepted', () => {
    expect(validateSchemaText(`\uFEFF${text(listForm)}`).ok).toBe(true);
  });
});

describe('invalid schema files give one located line per problem', () => {
  const cases: { name: string; raw: string; expected: RegExp }[] = [
    { name: 'JSON syntax error with line and column', raw: '{\n  "universe": "//u",\n  "steps": [\n    {"id": "a" "target": "//a"}\n  ]\n}', expected: /^x\.json:4:16: JSON syntax error: comma expected \[json-syntax\]$/ },
    { name: 'missing comma', raw: '{"universe":"//u" "steps":[{"id":"a","target":"//a"}]}', expected: /^x\.json:1:19: JSON syntax error: comma expected/ },
    { name: 'truncated file', raw: '{"universe":"//u","steps":[', expected: /^x\.json:1:\d+: JSON syntax error: .*expected \[json-syntax\]$/ },
    { name: 'top level not an object', raw: '[1,2]', expected: /^x\.json:1:1: \(root\): expected an object with "universe" and "steps", got an array \[type\]$/ },
    { name: 'missing universe', raw: text({ id: 'a', steps: [{ id: 'a', target: '//a' }] }), expected: /^x\.json:1:1: universe: is required \[required\]$/ },
    { name: 'unknown field', raw: text({ ...listForm, univers: '//x' }), expected: /^x\.json:\d+:3: univers: unknown field "univers" \[unknown-field\]$/ },
    { name: 'unknown step field', raw: withSteps([{ id: 'a', target: '//a', need: ['b'] }]), expected: /steps\[0\]\.need: unknown field "need" \[unknown-field\]$/ },
    { name: 'wrong type', raw: withSteps([{ id: 'a', target: 7 }]), expected: /steps\[0\]\.target: expected string, got number 7 \[type\]$/ },
    { name: 'steps neither list nor map', raw: withSteps('//a'), expected: /steps: expected a list of steps or a map of step id to target, got string "\/\/a" \[type\]$/ },
    { name: 'empty steps', raw: withSteps([]), expected: /steps: must list at least one step \[min\]$/ },
    { name: 'empty target', raw: withSteps([{ id: 'a', target: '' }]), expected: /steps\[0\]\.target: must not be empty \[min\]$/ },
    { name: 'blank target', raw: withSteps([{ id: 'a', target: '   ' }]), expected: /steps\[0\]\.target: must not be blank \[value\]$/ },
    { name: 'control character in target', raw: withSteps([{ id: 'a', target: '//a\n//b' }]), expected: /steps\[0\]\.target: a target must not contain control characters \[pattern\]$/ },
    { name: 'over-long target', raw: withSteps([{ id: 'a', target: `//${'x'.repeat(limits.maxTargetLength)}` }]), expected: /steps\[0\]\.target: must be at most 512 characters \[max\]$/ },
    { name: 'id with a slash', raw: withSteps([{ id: 'a/b', target: '//a' }]), expected: /steps\[0\]\.id: must use letters, digits .* \[pattern\]$/ },
    { name: 'id with ..', raw: withSteps([{ id: 'a..b', target: '//a' }]), expected: /steps\[0\]\.id: must use .*no "\.\." \[pattern\]$/ },
    { name: 'id with whitespace', raw: withSteps([{ id: 'a b', target: '//a' }]), expected: /steps\[0\]\.id: must use .* \[pattern\]$/ },
    { name: 'id with NUL', raw: withSteps([{ id: 'a\u0000', target: '//a' }]), expected: /steps\[0\]\.id: must use .* \[pattern\]$/ },
    { name: 'over-long id', raw: withSteps([{ id: 'a'.repeat(65), target: '//a' }]), expected: /steps\[0\]\.id: must be at most 64 characters \[max\]$/ },
    { name: 'reserved universe id', raw: withSteps([{ id: 'universe', target: '//a' }]), expected: /steps\[0\]\.id: "universe" is reserved .* \[reserved-id\]$/ },
    { name: 'too many steps', raw: withSteps(Array.from({ length: limits.maxSteps + 1 }, (_, i) => ({ id: `s${i}`, target: '//a' }))), expected: /steps: must list at most 2000 steps \[max\]$/ },
    { name: 'duplicate id', raw: withSteps([{ id: 'a', target: '//a' }, { id: 'a', target: '//b' }]), expected: /steps\[1\]\.id: duplicate step id "a" \(first used by steps\[0\]\) \[duplicate-id\]$/ },
    { name: 'unknown need with suggestion', raw: withSteps([{ id: 'common', target: '//c' }, { id: 'b', target: '//b', needs: ['comon'] }]), expected: /x\.json:\d+:\d+: steps\[1\]\.needs\[0\]: unknown step "comon" \(did you mean "common"\?\) \[unknown-need\]$/ },
    { name: 'unknown need without suggestion', raw: withSteps([{ id: 'a', target: '//a', needs: ['zzzzzz'] }]), expected: /steps\[0\]\.needs\[0\]: unknown step "zzzzzz" \[unknown-need\]$/ },
    { name: 'needs universe', raw: withSteps([{ id: 'a', target: '//a', needs: ['universe'] }]), expected: /unknown step "universe" \("universe" is built last/ },
    { name: 'self-loop', raw: withSteps([{ id: 'a', target: '//a', needs: ['a'] }]), expected: /steps\[0\]\.needs\[0\]: step "a" needs itself \[self-need\]$/ },
    { name: 'need listed twice', raw: withSteps([{ id: 'a', target: '//a' }, { id: 'b', target: '//b', needs: ['a', 'a'] }]), expected: /steps\[1\]\.needs\[1\]: "a" is listed twice \[duplicate-need\]$/ },
    { name: 'cycle with its path', raw: withSteps([{ id: 'a', target: '//a', needs: ['c'] }, { id: 'b', target: '//b', needs: ['a'] }, { id: 'c', target: '//c', needs: ['b'] }]), expected: /steps\[1\]\.needs\[0\]: cycle: a -> c -> b -> a \[cycle\]$/ },
    { name: 'duplicate JSON key', raw: '{"universe":"//u","universe":"//v","steps":[{"id":"a","target":"//a"}]}', expected: /^x\.json:1:19: universe: key "universe" appears more than once in this object \[duplicate-key\]$/ },
    { name: 'duplicate map-form key', raw: '{"universe":"//u","steps":{"1":"//a","1":"//b"}}', expected: /steps\["1"\]: key "1" appears more than once/ },
    { name: 'estimate not positive', raw: withSteps([{ id: 'a', target: '//a', estimateSec: 0 }]), expected: /steps\[0\]\.estimateSec: must be greater than 0 \[min\]$/ },
    { name: 'deep nesting', raw: `{"universe":"//u","steps":${'['.repeat(100)}${']'.repeat(100)}}`, expected: /JSON syntax error|nesting deeper than 64 levels/ },
    { name: 'file name not a valid default id', raw: '{"universe":"//u","steps":[{"id":"a","target":"//a"}]}', expected: /id: no "id" given, and the file name "my schema" is not a valid id .* \[default-id\]$/ },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const result = validateSchemaText(c.raw, { defaultId: c.name.startsWith('file name') ? 'my schema' : 'x' });
      const lines = problemLines(result);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line).not.toContain('\n');
      expect(lines.some((l) => c.expected.test(l)), lines.join('\n')).toBe(true);
    });
  }

  it('finds a cycle spanning the whole maximum-size schema', () => {
    const n = limits.maxSteps;
    const steps = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, target: '//a', needs: [`s${(i + 1) % n}`] }));
    const result = validateSchemaValue({ id: 'ring', universe: '//u', steps });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.rule).toBe('cycle');
    expect(result.problems[0]!.message.split(' -> ')).toHaveLength(n + 1);
  });
});

describe('schema files as people write them', () => {
  it('accepts comments and trailing commas (JSONC); the digest ignores formatting and comments', () => {
    const plain = validateSchemaText(text(listForm));
    const jsonc = validateSchemaText(
      [
        '// the shared steps of our monorepo',
        '{',
        '  "id": "mono", /* the cohort id */',
        '  "universe": "//my_universe/...",',
        '  "steps": [',
        '    { "id": "common", "target": "//my_universe/common/...", "estimateSec": 600, },',
        '    { "id": "planning", "target": "//my_universe/planning/...", "needs": ["common",], },',
        '    { "id": "perception", "target": "//my_universe/perception/..." },',
        '    { "id": "test", "target": "//my_universe/test/..." }, // last',
        '  ],',
        '}',
      ].join('\n'),
    );
    expect(plain.ok && jsonc.ok).toBe(true);
    if (!plain.ok || !jsonc.ok) return;
    expect(jsonc.digest).toBe(plain.digest);
    expect(jsonc.schema).toEqual(plain.schema);
  });

  it('a __proto__ key in JSONC is an ordinary key (and an unknown field), never a prototype', () => {
    const result = validateSchemaText('{ "__proto__": { "polluted": true }, "universe": "//u", "steps": [{ "id": "a", "target": "//a" },] }', { defaultId: 'x' });
    expect(problemLines(result).join('\n')).toMatch(/__proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a YAML file gets a hint that schema files are JSON', () => {
    const lines = problemLines(validateSchemaText('universe: //u/...\nsteps:\n  - id: a\n', { defaultId: 'x' }));
    expect(lines[0]).toMatch(/schema files are JSON \(comments and trailing commas are allowed\), and this looks like YAML: convert it to JSON \[json-syntax\]$/);
    const byName = problemLines(validateSchemaText('{', { defaultId: 'x', fileName: 'ci/taskshard.yaml' }));
    expect(byName[0]).toMatch(/looks like YAML/);
  });

  it('reports every cycle and every graph problem, even next to shape errors', () => {
    const result = validateSchemaValue({
      id: 'many',
      universe: '//u',
      steps: [
        { id: 'a', target: '//a', needs: ['b'] },
        { id: 'b', target: '//b', needs: ['a'] },
        { id: 'c', target: '//c', needs: ['d'] },
        { id: 'd', target: '//d', needs: ['e', 'zzz'] },
        { id: 'e', target: 5, needs: ['c'] },
      ],
    });
    const rules = result.ok ? [] : result.problems.map((p) => `${p.rule}: ${p.message}`);
    expect(rules).toContain('type: expected string, got number 5');
    expect(rules).toContain('unknown-need: unknown step "zzz"');
    expect(rules).toContain('cycle: cycle: a -> b -> a');
    expect(rules).toContain('cycle: cycle: c -> d -> e -> c');
    expect(rules).toHaveLength(4);
  });
});
