import { describe, expect, it } from 'vitest';
import { decodePeerMessage, describeProblems } from '../../shared/frames.js';
import { peerMessageSchema } from '../../shared/protocol.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import { helloFor } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';

/**
 * A hello's schema is checked by zod once per distinct content (shared/frames.ts):
 * a hello whose schema was seen before must be decoded exactly as the full check
 * decodes it — the same message when valid, the same problem when not.
 */

/** What the full check says, without the cache: the union schema on the parsed frame. */
function fullCheck(frame: unknown): ReturnType<typeof decodePeerMessage> {
  const result = peerMessageSchema.safeParse(JSON.parse(JSON.stringify(frame)), { reportInput: true });
  if (result.success) return { ok: true, message: result.data };
  return { ok: false, problem: describeProblems(problemsFromZod(result.error), 'hello') };
}

const decode = (frame: unknown): ReturnType<typeof decodePeerMessage> => decodePeerMessage(JSON.stringify(frame));

describe('hello schema checked once per content', () => {
  // A schema no other test uses, so the first decode below is the uncached one.
  const schema = flatSchema(7, 'cache-probe');

  it('a second hello with the same schema decodes to the same message', () => {
    const first = decode(helloFor('p1', schema));
    const second = decode(helloFor('p2', schema));
    expect(first).toEqual(fullCheck(helloFor('p1', schema)));
    expect(second).toEqual(fullCheck(helloFor('p2', schema)));
    expect(second.ok && second.message.type === 'hello' && Object.isFrozen(second.message.schema)).toBe(true);
  });

  const bad: [string, Record<string, unknown>][] = [
    ['an unknown field', { ...helloFor('p3', schema), extra: 1 }],
    ['a bad peer id', helloFor('bad id!', schema)],
    ['a wrong type', { ...helloFor('p4', schema), isolated: 'no' }],
    ['a missing field', (({ cacheId: _drop, ...rest }) => rest)(helloFor('p5', schema))],
    ['a v1 peer id in the Task Director namespace', helloFor('td:x', schema)],
  ];
  for (const [what, frame] of bad) {
    it(`${what} with a known schema: the problem the full check gives`, () => {
      expect(decode(helloFor('warm', schema)).ok).toBe(true);
      const decoded = decode(frame);
      expect(decoded.ok).toBe(false);
      expect(decoded).toEqual(fullCheck(frame));
    });
  }

  it('a schema that differs from a known one in one step is checked in full', () => {
    expect(decode(helloFor('warm', schema)).ok).toBe(true);
    const frame = helloFor('p6', schema);
    const wire = { ...frame.schema, steps: frame.schema.steps.map((s, i) => (i === 3 ? { ...s, id: 'not ok!' } : s)) };
    const decoded = decode({ ...frame, schema: wire });
    expect(decoded.ok).toBe(false);
    expect(decoded).toEqual(fullCheck({ ...frame, schema: wire }));
    expect(!decoded.ok && decoded.problem).toMatch(/^hello: schema\.steps\[3\]\.id: /);
  });

  it('an extra field inside a known schema is refused as before', () => {
    expect(decode(helloFor('warm', schema)).ok).toBe(true);
    const frame = helloFor('p7', schema);
    const wire = { ...frame.schema, extra: true };
    expect(decode({ ...frame, schema: wire })).toEqual(fullCheck({ ...frame, schema: wire }));
  });
});
