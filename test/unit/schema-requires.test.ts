import { describe, expect, it } from 'vitest';
import { wireSchemaSchema } from '../../shared/protocol.js';
import { canRun, labelListSchema, missingLabels, splitLabelList } from '../../shared/labels.js';
import { formatSchemaProblem, validateSchemaText, validateSchemaValue } from '../../shared/schema-validate.js';

const base = {
  id: 'ml',
  universe: '//u/...',
  steps: [
    { id: 'common', target: '//common/...' },
    { id: 'train', target: '//train/...', needs: ['common'], requires: ['gpu', 'arch:x64'] },
  ],
};

function digest(value: unknown): string {
  const result = validateSchemaValue(value);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.digest;
}

function problems(value: unknown): string[] {
  const result = validateSchemaText(JSON.stringify(value, null, 2), { defaultId: 'x' });
  if (result.ok) throw new Error('expected problems');
  return result.problems.map((p) => formatSchemaProblem('x.json', p));
}

describe('step requires', () => {
  it('is kept on the normalized step, and omitted when empty', () => {
    const result = validateSchemaValue({ ...base, steps: [...base.steps, { id: 'lint', target: '//lint', requires: [] }] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.schema.steps[1]!.requires).toEqual(['gpu', 'arch:x64']);
    expect(result.schema.steps[0]!).not.toHaveProperty('requires');
    expect(result.schema.steps[2]!).not.toHaveProperty('requires');
  });

  it('is part of the digest, in any order; a schema without it keeps its digest', () => {
    const withoutLabels = { ...base, steps: [base.steps[0], { id: 'train', target: '//train/...', needs: ['common'] }] };
    const emptyRequires = { ...base, steps: [base.steps[0], { id: 'train', target: '//train/...', needs: ['common'], requires: [] }] };
    const reordered = { ...base, steps: [base.steps[0], { ...base.steps[1], requires: ['arch:x64', 'gpu'] }] };
    const fewer = { ...base, steps: [base.steps[0], { ...base.steps[1], requires: ['gpu'] }] };
    expect(digest(reordered)).toBe(digest(base));
    expect(digest(fewer)).not.toBe(digest(base));
    expect(digest(withoutLabels)).not.toBe(digest(base));
    expect(digest(emptyRequires)).toBe(digest(withoutLabels));
    // The digest of a label-free schema is what it was before labels existed (pinned).
    expect(digest({ id: 'ref', universe: '//u/...', steps: [{ id: '1', target: '//a/...' }] })).toBe(
      'sha256:dc6c1bed8cd3298077a813337c9b4dd04451e1622433bcbc3f3c7f4904c4e694',
    );
  });

  it('rejects bad labels naming the step, the path and the label', () => {
    const lines = problems({ ...base, steps: [base.steps[0], { ...base.steps[1], requires: ['gpu', 'has space', 'gpu'] }] });
    expect(lines).toEqual([
      expect.stringMatching(/^x\.json:\d+:\d+: steps\[1\]\.requires\[1\]: step "train": label "has space" must use letters, digits/),
      expect.stringMatching(/^x\.json:\d+:\d+: steps\[1\]\.requires\[2\]: step "train": label "gpu" is listed twice \[value\]$/),
    ]);
    expect(problems({ ...base, steps: [{ id: 'a', target: '//a', requires: 'gpu' }] })).toEqual([
      expect.stringMatching(/steps\[0\]\.requires: step "a": expected array, got string "gpu" \[type\]$/),
    ]);
    expect(problems({ ...base, steps: [{ id: 'a', target: '//a', requires: ['x'.repeat(65)] }] })[0]).toMatch(/label "x{65}" is longer than 64 characters/);
  });

  it('travels in the hello schema', () => {
    const wire = { id: 'ml', digest: `sha256:${'0'.repeat(64)}`, universe: '//u', steps: [{ id: 'train', target: '//t', needs: [], requires: ['gpu'] }] };
    expect(wireSchemaSchema.safeParse(wire).success).toBe(true);
    expect(wireSchemaSchema.safeParse({ ...wire, steps: [{ ...wire.steps[0], requires: ['a b'] }] }).success).toBe(false);
  });
});

describe('label matching', () => {
  it('a peer can run a step iff its labels include every required label', () => {
    const labels = new Set(['gpu', 'os:linux']);
    expect(canRun(undefined, labels)).toBe(true);
    expect(canRun([], new Set())).toBe(true);
    expect(canRun(['gpu'], labels)).toBe(true);
    expect(canRun(['gpu', 'arch:arm64'], labels)).toBe(false);
    expect(canRun(['GPU'], labels)).toBe(false);
    expect(missingLabels(['gpu', 'arch:arm64', 'mem:64g'], labels)).toEqual(['arch:arm64', 'mem:64g']);
  });

  it('splits label lists on commas and spaces, and validates them', () => {
    expect(splitLabelList('gpu,arch:arm64, mem:64g ,,')).toEqual(['gpu', 'arch:arm64', 'mem:64g']);
    expect(labelListSchema.safeParse(['gpu', 'arch:arm64']).success).toBe(true);
    expect(labelListSchema.safeParse(['../x']).success).toBe(false);
    expect(labelListSchema.safeParse(Array.from({ length: 33 }, (_, i) => `l${i}`)).success).toBe(false);
  });
});
