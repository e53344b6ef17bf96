import { describe, expect, it } from 'vitest';
import { validateSchemaValue } from '../../shared/schema-validate.js';
import { SchemaCheckCache } from '../../server/http/schema-check-cache.js';
import { flatSchema, wireSchema } from '../helpers/schemas.js';

/** A hello's schema without its claimed digest, as checkHello validates it. */
function sent(steps: number, id = 'flat'): unknown {
  const { digest: _digest, ...value } = wireSchema(flatSchema(steps, id));
  return value;
}

describe('SchemaCheckCache', () => {
  it('validates a schema once: the same content again returns the same checked result, equal to a fresh check', () => {
    const cache = new SchemaCheckCache();
    const first = cache.check(sent(3));
    const again = cache.check(sent(3));
    expect(first.ok).toBe(true);
    expect(again).toBe(first);
    expect(again).toEqual(validateSchemaValue(sent(3)));
    expect(cache.size).toBe(1);
  });

  it('keys on the content, not on a claimed digest: other content is checked on its own', () => {
    const cache = new SchemaCheckCache();
    const a = cache.check(sent(3));
    const b = cache.check(sent(4));
    expect(b).not.toBe(a);
    expect(a.ok && b.ok && a.digest !== b.digest).toBe(true);
  });

  it('keeps no invalid schema: each bad one gets the full check and its problems', () => {
    const cache = new SchemaCheckCache();
    const bad = { id: 'x', universe: '//u/...', steps: [{ id: 'a', target: '//a', needs: ['missing'] }] };
    const r1 = cache.check(bad);
    expect(r1.ok).toBe(false);
    expect(cache.check(bad)).not.toBe(r1);
    expect(cache.size).toBe(0);
  });

  it('evicts the least recently used entry past maxEntries or maxTotalChars', () => {
    const cache = new SchemaCheckCache(2);
    const a = cache.check(sent(1, 'a'));
    cache.check(sent(1, 'b'));
    cache.check(sent(1, 'a')); // a is now the most recent
    cache.check(sent(1, 'c')); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.check(sent(1, 'a'))).toBe(a);
    const small = new SchemaCheckCache(100, JSON.stringify(sent(1, 'a')).length + 10);
    small.check(sent(1, 'a'));
    small.check(sent(1, 'b'));
    expect(small.size).toBe(1);
  });

  it('finds a frozen schema (the decoder hands out one frozen object per known content) by the object itself', () => {
    // A budget smaller than the schema's text: nothing is kept by content, so only the object can be found.
    const cache = new SchemaCheckCache(100, 10);
    const frozen = Object.freeze(sent(3) as object);
    const first = cache.check(frozen);
    expect(first.ok).toBe(true);
    expect(cache.size).toBe(0);
    expect(cache.check(frozen)).toBe(first);
    // The same content as a fresh, unfrozen object is checked anew (content is never trusted by identity alone).
    const plain = cache.check(sent(3));
    expect(plain).not.toBe(first);
    expect(plain).toEqual(first);
  });

  it('takes the schema as a hello carries it: the claimed digest is left out, and the frozen wire object is found by identity', () => {
    const cache = new SchemaCheckCache(100, 10);
    const wire = Object.freeze(wireSchema(flatSchema(3)));
    const first = cache.check(wire);
    expect(first).toEqual(validateSchemaValue(sent(3)));
    expect(cache.check(wire)).toBe(first);
    // A wrong claim changes nothing in the check: the digest is the authority's own.
    const lying = cache.check({ ...wireSchema(flatSchema(3)), digest: 'sha256:0' });
    expect(lying).toEqual(first);
  });
});
