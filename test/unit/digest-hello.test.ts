import { describe, expect, it } from 'vitest';
import { checkHello } from '../../server/http/hello-input.js';
import { SchemaCheckCache } from '../../server/http/schema-check-cache.js';
import { errorCodes } from '../../shared/error-codes.js';
import { decodePeerMessage } from '../../shared/frames.js';
import type { Hello } from '../../shared/protocol.js';
import { helloSchemaDigest, schemaDigest } from '../../shared/schema-digest.js';
import { validateSchemaValue } from '../../shared/schema-validate.js';
import { byeReason, helloFrame, type BaseHello } from '../../peer/session-frames.js';
import { digestHelloFor, helloFor } from '../helpers/raw-peer.js';
import { dagSchema, flatSchema, wireSchema } from '../helpers/schemas.js';

/**
 * The digest-first hello without sockets: decoding (shared/frames.ts), the authority's index of
 * checked schemas (schema-check-cache.ts), the hello check (hello-input.ts), the error code, and
 * the peer's two hellos (peer/session-frames.ts). hello-input's index is per process: each test
 * uses schema ids of its own.
 */

const decode = (frame: unknown): ReturnType<typeof decodePeerMessage> => decodePeerMessage(JSON.stringify(frame));
let serial = 0;
const freshId = (): string => `unit-digest-${++serial}`;

describe('helloSchemaDigest', () => {
  it('is the cohort digest for a schema without estimates, and covers estimates when there are some', () => {
    const plain = flatSchema(3, 'plain');
    expect(helloSchemaDigest(plain)).toBe(schemaDigest(plain));
    const a = dagSchema({ x: [], y: ['x'] }, { x: 10 });
    const b = dagSchema({ x: [], y: ['x'] }, { x: 20 });
    expect(schemaDigest(a)).toBe(schemaDigest(b));
    expect(helloSchemaDigest(a)).not.toBe(helloSchemaDigest(b));
    expect(helloSchemaDigest(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('peer and authority agree: the digest of a schema file equals that of the schema the authority checks from its wire form', () => {
    const schema = dagSchema({ a: [], b: ['a'], c: ['b', 'a'] }, { a: 1.5, c: 600 });
    const { digest: _claimed, ...sent } = wireSchema(schema);
    const checked = validateSchemaValue(sent);
    expect(checked.ok && helloSchemaDigest(checked.schema)).toBe(helloSchemaDigest(schema));
  });
});

describe('decoding a digest-first hello', () => {
  it('a hello with schemaDigest and no schema decodes, with every other field checked as before', () => {
    const hello = digestHelloFor('p1', flatSchema(2, freshId()));
    const decoded = decode(hello);
    expect(decoded).toEqual({ ok: true, message: hello });
    expect(decode({ ...hello, isolated: 'no' })).toEqual({ ok: false, problem: 'hello: isolated: expected boolean, got string "no"' });
  });

  it('names the field: a digest of the wrong form, or neither schema nor schemaDigest', () => {
    const hello = digestHelloFor('p1', flatSchema(2, freshId()));
    expect(decode({ ...hello, schemaDigest: 'md5:abc' })).toEqual({ ok: false, problem: 'hello: schemaDigest: must be sha256:<64 hex digits>' });
    expect(decode({ ...hello, schemaDigest: 7 })).toMatchObject({ ok: false, problem: expect.stringMatching(/^hello: schemaDigest: /) });
    const { schemaDigest: _digest, ...neither } = hello;
    expect(decode(neither)).toEqual({ ok: false, problem: 'hello: schema: required (or schemaDigest, naming a schema the authority holds)' });
  });
});

describe('the index of checked schemas by hello digest', () => {
  it('knows a schema once it passed a check (by content, or by the frozen wire object), and nothing before', () => {
    const cache = new SchemaCheckCache();
    const schema = dagSchema({ a: [], b: ['a'] }, { b: 7 });
    const digest = helloSchemaDigest(schema);
    expect(cache.known(digest)).toBeUndefined();
    const { result, helloDigest } = cache.checkSent(wireSchema(schema));
    expect(helloDigest).toBe(digest);
    expect(cache.known(digest)).toBe(result);
    const frozen = Object.freeze(wireSchema(flatSchema(2, 'frozen')));
    const viaObject = cache.checkSent(frozen);
    expect(cache.checkSent(frozen)).toBe(viaObject);
    expect(cache.known(helloSchemaDigest(flatSchema(2, 'frozen')))).toBe(viaObject.result);
  });

  it('an invalid schema is never known', () => {
    const cache = new SchemaCheckCache();
    const bad = { id: 'bad', universe: '//u/...', steps: [{ id: 'a', target: '//a', needs: ['missing'] }] };
    expect(cache.checkSent(bad)).toMatchObject({ result: { ok: false }, helloDigest: null });
    expect(cache.knownSize).toBe(0);
  });

  it('is bounded: least recently used first out, by count and by the schemas\' characters; a schema checked again comes back', () => {
    const cache = new SchemaCheckCache(2);
    const [a, b, c] = ['a', 'b', 'c'].map((id) => flatSchema(2, id)) as [ReturnType<typeof flatSchema>, ReturnType<typeof flatSchema>, ReturnType<typeof flatSchema>];
    cache.check(wireSchema(a));
    cache.check(wireSchema(b));
    expect(cache.known(helloSchemaDigest(a))).toBeDefined(); // a is now the most recent
    cache.check(wireSchema(c)); // b goes
    expect(cache.knownSize).toBe(2);
    expect(cache.known(helloSchemaDigest(b))).toBeUndefined();
    expect(cache.known(helloSchemaDigest(a))).toBeDefined();
    cache.check(wireSchema(b)); // checked again (a full hello): known again
    expect(cache.known(helloSchemaDigest(b))).toBeDefined();
    const { digest: _d, ...sent } = wireSchema(a);
    const small = new SchemaCheckCache(100, JSON.stringify(sent).length + 10);
    small.check(wireSchema(a));
    small.check(wireSchema(flatSchema(2, 'b')));
    expect(small.knownSize).toBe(1);
    expect(small.known(helloSchemaDigest(a))).toBeUndefined();
  });
});

describe('checkHello', () => {
  it('a digest-first hello for a schema a full hello brought gets the same schema, digest and registration', () => {
    const schema = dagSchema({ a: [], b: ['a'] }, { a: 3 }, freshId());
    const full = checkHello(helloFor('p1', schema));
    const named = checkHello(digestHelloFor('p1', schema));
    expect(full.ok).toBe(true);
    expect(named).toEqual(full);
    expect(named.ok && named.schema).toBe(full.ok && full.schema);
  });

  it('an unknown digest is the unknown-schema refusal, naming the digest', () => {
    const schema = flatSchema(2, freshId());
    expect(checkHello(digestHelloFor('p1', schema))).toEqual({
      ok: false,
      refusal: 'unknown-schema',
      message: `schemaDigest ${helloSchemaDigest(schema)}: this authority does not hold that schema; send the hello again with its schema`,
    });
  });

  it('a schemaDigest sent with a schema must match it', () => {
    const schema = flatSchema(2, freshId());
    const other = flatSchema(3, freshId());
    const mismatch = checkHello({ ...helloFor('p1', schema), schemaDigest: helloSchemaDigest(other) });
    expect(mismatch).toMatchObject({ ok: false, refusal: 'schema-mismatch' });
    expect(!mismatch.ok && mismatch.message).toBe(
      `schemaDigest ${helloSchemaDigest(other)} does not match the schema sent (its digest with estimates is ${helloSchemaDigest(schema)}); is the peer a different taskshard version?`,
    );
    expect(checkHello({ ...helloFor('p1', schema), schemaDigest: helloSchemaDigest(schema) }).ok).toBe(true);
  });

  it('a hello with neither (a caller that skipped the decoder) is refused, not a crash', () => {
    const { schemaDigest: _d, ...neither } = digestHelloFor('p1', flatSchema(1, freshId()));
    expect(checkHello(neither as Hello)).toMatchObject({ ok: false, refusal: 'schema-mismatch', message: 'schema: required (or schemaDigest)' });
  });
});

describe('UNKNOWN_SCHEMA', () => {
  it('is retryable and keeps the connection open (the peer sends the full hello on it)', () => {
    expect(errorCodes.UNKNOWN_SCHEMA).toMatchObject({ retryable: true, closeCode: null });
  });
});

describe("the peer's hellos (peer/session-frames.ts)", () => {
  const schema = flatSchema(2, 'peer-frames');
  const { schema: wire, ...rest } = helloFor('p1', schema);
  const base: BaseHello = { ...rest, schema: wire };
  const digest = helloSchemaDigest(schema);

  it('digest-first leaves the schema out and names it; the full one carries the schema and no digest', () => {
    const first = helloFrame(base, { kind: 'registration', registrationToken: 'r'.repeat(43) }, 'digest', digest);
    expect(first).toEqual({ ...rest, schemaDigest: digest, registrationToken: 'r'.repeat(43) });
    const full = helloFrame(base, { kind: 'registration', registrationToken: 'r'.repeat(43) }, 'full', digest);
    expect(full).toEqual({ ...rest, schema: wire, registrationToken: 'r'.repeat(43) });
    expect(decode(first).ok && decode(full).ok).toBe(true);
  });

  it('a resume carries the resume token and the current step, not the registration token', () => {
    const resume = helloFrame(base, { kind: 'resume', resumeToken: 'rt_1', currentStep: { stepId: 's1', leaseId: 'l_1' } }, 'digest', digest);
    expect(resume).toEqual({ ...rest, schemaDigest: digest, resumeToken: 'rt_1', currentStep: { stepId: 's1', leaseId: 'l_1' } });
    expect(byeReason({ kind: 'interrupted' })).toBe('interrupted');
  });
});
