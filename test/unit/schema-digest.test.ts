import { describe, expect, it } from 'vitest';
import { validateSchemaText } from '../../shared/schema-validate.js';

function digestOf(raw: string, defaultId = 'x'): string {
  const result = validateSchemaText(raw, { defaultId });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.digest;
}

const base = {
  id: 'ref',
  universe: '//u/...',
  steps: [
    { id: '1', target: '//a/...' },
    { id: '2', target: '//b/...' },
  ],
};

describe('schema digest', () => {
  it('does not change with key order or whitespace', () => {
    const compact = JSON.stringify(base);
    const reordered = '{ "steps" : [ {"target":"//a/...","id":"1"},\n\n {"target":"//b/...", "id":"2"} ],\n\t"universe":"//u/...", "id":"ref" }';
    expect(digestOf(reordered)).toBe(digestOf(compact));
    expect(digestOf(JSON.stringify(base, null, 4))).toBe(digestOf(compact));
  });

  it('is the same for the map form and the list form of the same steps', () => {
    const map = JSON.stringify({ id: 'ref', universe: '//u/...', steps: { '1': '//a/...', '2': '//b/...' } });
    expect(digestOf(map)).toBe(digestOf(JSON.stringify(base)));
  });

  it('ignores the order of needs and the estimates, and $schema', () => {
    const a = { id: 'd', universe: '//u', steps: [{ id: 'x', target: '//x' }, { id: 'y', target: '//y' }, { id: 'z', target: '//z', needs: ['x', 'y'], estimateSec: 5 }] };
    const b = { $schema: './taskshard.schema.json', id: 'd', universe: '//u', steps: [{ id: 'x', target: '//x' }, { id: 'y', target: '//y' }, { id: 'z', target: '//z', needs: ['y', 'x'] }] };
    expect(digestOf(JSON.stringify(a))).toBe(digestOf(JSON.stringify(b)));
  });

  it('changes when anything that decides the work changes', () => {
    const d = digestOf(JSON.stringify(base));
    const variants = [
      { ...base, id: 'other' },
      { ...base, universe: '//v/...' },
      { ...base, steps: [base.steps[1], base.steps[0]] },
      { ...base, steps: [base.steps[0], { id: '2', target: '//c/...' }] },
      { ...base, steps: [base.steps[0], { id: '2', target: '//b/...', needs: ['1'] }] },
      { ...base, steps: [base.steps[0]] },
    ];
    const digests = variants.map((v) => digestOf(JSON.stringify(v)));
    for (const other of digests) expect(other).not.toBe(d);
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('takes the default id from the file name', () => {
    const noId = JSON.stringify({ universe: '//u/...', steps: base.steps });
    expect(digestOf(noId, 'ref')).toBe(digestOf(JSON.stringify(base)));
  });
});
