import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorMessage } from '../../shared/protocol.js';
import { helloSchemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { dumpDb } from '../helpers/db-dump.js';
import { digestHelloFor, helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The digest-first hello against a real authority on 127.0.0.1 with real `ws` peers: a hello that
 * names its schema by `schemaDigest` is welcomed when the authority checked that schema, answered
 * `UNKNOWN_SCHEMA` (connection kept open) when it did not, and the full hello on the same
 * connection joins; bad or mismatched digests are refused naming the field. The authority's index
 * of checked schemas is per process, so each test uses schema ids of its own.
 */

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];
let serial = 0;

beforeEach(async () => {
  dir = tempDir('taskshard-digest-');
  server = await startServer({ dbPath: dir.file('s.db'), maxPayloadBytes: 1024 * 1024 });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

/** A schema id no other test (in this process) used. */
function fresh(steps: number): SchemaDef {
  return flatSchema(steps, `digest-hello-${process.pid}-${++serial}`);
}

async function connect(): Promise<RawPeer> {
  const p = await RawPeer.connect(server.wsUrl);
  peers.push(p);
  return p;
}

const isError = (m: { type: string }): m is ErrorMessage => m.type === 'error';

describe('digest-first hello', () => {
  it('unknown digest: UNKNOWN_SCHEMA (retryable, connection open, nothing stored); the full hello on the same connection joins', async () => {
    const schema = fresh(3);
    const p = await connect();
    const before = dumpDb(dir.file('s.db'));
    p.send(digestHelloFor('p1', schema));
    const error = await p.waitFor(isError);
    expect(error).toMatchObject({ code: 'UNKNOWN_SCHEMA', retryable: true });
    expect(error.message).toContain(`schemaDigest ${helloSchemaDigest(schema)}`);
    await server.settle();
    expect(p.closeCode).toBeNull();
    expect(dumpDb(dir.file('s.db'))).toEqual(before);
    p.send(helloFor('p1', schema));
    const welcome = await p.waitType('welcome');
    expect(welcome.cohort.steps).toBe(3);
    await p.waitType('assign');
  });

  it('known digest: a hello without the schema joins the same cohort as the full hello did, exactly as with the schema', async () => {
    const schema = fresh(4);
    const a = await connect();
    a.send(helloFor('a', schema));
    const first = await a.waitType('welcome');
    const b = await connect();
    b.send(digestHelloFor('b', schema));
    const second = await b.waitType('welcome');
    expect(second.cohort.id).toBe(first.cohort.id);
    expect(second.cohort.peers).toBe(2);
    await b.waitType('assign');
    expect(b.received.some((m) => m.type === 'error')).toBe(false);
    // A reconnect names the schema by digest too and resumes (the resume's schema check passes).
    await b.kill();
    const again = await connect();
    again.send(digestHelloFor('b', schema, { resumeToken: second.resumeToken }));
    expect((await again.waitType('welcome')).resumed).toBe(true);
  });

  it('a digest-first hello that creates a cohort gets the checked schema: steps, needs and estimates as sent', async () => {
    const schema = dagSchema({ a: [], b: ['a'] }, { a: 30, b: 5 }, `digest-dag-${process.pid}-${++serial}`);
    const warm = await connect();
    warm.send(helloFor('warm', schema, { isolated: true }));
    await warm.waitType('assign');
    const p = await connect();
    p.send(digestHelloFor('p', schema, { patchsets: ['refs/changes/7/1'] }));
    const welcome = await p.waitType('welcome');
    expect(welcome.cohort.steps).toBe(2);
    // Only `a` is ready (b needs it): the needs came with the schema the digest named.
    expect((await p.waitType('assign')).stepId).toBe('a');
  });

  it('the digest covers estimates: the same steps with other estimates are a schema the authority does not hold', async () => {
    const id = `digest-est-${process.pid}-${++serial}`;
    const one = dagSchema({ a: [], b: [] }, { a: 10 }, id);
    const other = dagSchema({ a: [], b: [] }, { a: 99 }, id);
    expect(helloSchemaDigest(one)).not.toBe(helloSchemaDigest(other));
    const a = await connect();
    a.send(helloFor('a', one));
    await a.waitType('welcome');
    const b = await connect();
    b.send(digestHelloFor('b', other));
    expect((await b.waitFor(isError)).code).toBe('UNKNOWN_SCHEMA');
  });

  it('a schemaDigest that does not match the schema sent with it: SCHEMA_MISMATCH naming the field, closed 1008', async () => {
    const schema = fresh(2);
    const p = await connect();
    p.send({ ...helloFor('p', schema), schemaDigest: helloSchemaDigest(fresh(2)) });
    const error = await p.waitFor(isError);
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.message).toMatch(/^schemaDigest sha256:[0-9a-f]{64} does not match the schema sent \(its digest with estimates is sha256:[0-9a-f]{64}\)/);
    expect(await p.closed()).toBe(1008);
  });

  it('a schemaDigest that matches the schema sent with it joins', async () => {
    const schema = fresh(2);
    const p = await connect();
    p.send({ ...helloFor('p', schema), schemaDigest: helloSchemaDigest(schema) });
    await p.waitType('welcome');
  });

  it('a schemaDigest of the wrong form, or a hello with neither schema nor digest: BAD_MESSAGE naming the field', async () => {
    const p = await connect();
    p.send(digestHelloFor('p', fresh(1), { schemaDigest: 'sha256:XYZ' }));
    expect(await p.waitFor(isError)).toMatchObject({ code: 'BAD_MESSAGE', message: 'hello: schemaDigest: must be sha256:<64 hex digits>' });
    const from = p.received.length;
    const { schemaDigest: _digest, ...neither } = digestHelloFor('p', fresh(1));
    p.send(neither);
    expect(await p.waitFor(isError, from)).toMatchObject({ code: 'BAD_MESSAGE', message: 'hello: schema: required (or schemaDigest, naming a schema the authority holds)' });
  });

  it('after UNKNOWN_SCHEMA the full hello may be larger than 64 KiB, once; a connection still sends at most one large frame', async () => {
    // 2,000 steps with long targets: about 190 KB of hello.
    const big: SchemaDef = { id: `digest-big-${process.pid}-${++serial}`, universe: '//...', steps: Array.from({ length: 2000 }, (_, i) => ({ id: `s${i}`, target: `//very/long/package/path/number/${i}/${'x'.repeat(40)}/...`, needs: [] })) };
    expect(JSON.stringify(helloFor('p', big)).length).toBeGreaterThan(128 * 1024);
    const p = await connect();
    p.send(digestHelloFor('p', big));
    expect((await p.waitFor(isError)).code).toBe('UNKNOWN_SCHEMA');
    p.send(helloFor('p', big));
    await p.waitType('welcome');
    // A second large frame on this connection is refused unread (1009), as before.
    p.send(helloFor('p', big));
    expect(await p.closed()).toBe(1009);
  });

  it('a large digest-first hello that is not known gets no second large frame', async () => {
    const big: SchemaDef = { id: `digest-pad-${process.pid}-${++serial}`, universe: '//...', steps: Array.from({ length: 2000 }, (_, i) => ({ id: `s${i}`, target: `//pkg/${i}/${'y'.repeat(40)}/...`, needs: [] })) };
    const p = await connect();
    // A digest-first hello padded past 64 KiB (labels are not the way to do it; a long ciJobUrl is capped): the first frame, large and valid JSON.
    p.sendRaw(`${JSON.stringify(digestHelloFor('p', big)).slice(0, -1)}${' '.repeat(70 * 1024)}}`);
    expect((await p.waitFor(isError)).code).toBe('UNKNOWN_SCHEMA');
    p.send(helloFor('p', big));
    expect(await p.closed()).toBe(1009);
  });
});
