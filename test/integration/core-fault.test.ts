import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AuthorityApp } from '../../server/app.js';
import { parseServerConfig } from '../../server/config.js';
import type { Snapshot } from '../../server/core/records.js';
import { openStore } from '../../server/store/open-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Defect 2 of issue 10: an exception inside `Scheduler.handle` left memory
 * ahead of the database (mutations stayed, writes and frames were dropped).
 * Here the exception is real: the injected id source throws while the core is
 * granting a lease, in the middle of a transition that has already changed
 * state. The input must be undone whole, the sender told INTERNAL, the error
 * logged whole, memory and database must agree, and the peer carries on.
 */

let dir: ReturnType<typeof tempDir>;
let built: AuthorityApp | null;
const peers: RawPeer[] = [];
let logLines: Record<string, unknown>[];

beforeEach(() => {
  dir = tempDir('taskshard-fault-');
  built = null;
  logLines = [];
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await built?.close();
  dir.remove();
});

/** Lease ids l1, l2, ...; while `broken` is set, asking for one throws (a bug deep inside a transition). */
function faultyIds(): { broken: boolean; cohortId(): string; leaseId(): string } {
  let c = 0;
  let l = 0;
  return {
    broken: false,
    cohortId: () => `c${++c}`,
    leaseId() {
      if (this.broken) throw new Error('lease id source exploded');
      return `l${++l}`;
    },
  };
}

function sorted(s: Snapshot): Snapshot {
  const by = <T>(key: (x: T) => string) => (a: T, b: T) => key(a).localeCompare(key(b));
  return {
    cohorts: [...s.cohorts].sort(by((c) => c.cohortId)),
    steps: [...s.steps].sort(by((x) => `${x.cohortId}/${x.stepId}`)),
    leases: [...s.leases].sort(by((l) => l.leaseId)),
    peers: [...s.peers].sort(by((p) => `${p.cohortId}/${p.peerId}`)),
    memos: [...s.memos].sort(by((m) => m.memoKey)),
    durations: [...s.durations].sort(by((d) => d.durationKey)),
  };
}

async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
}

describe('an exception inside the core', () => {
  it('undoes the whole input: INTERNAL to the sender, the error logged whole, memory equals the database, and the peer carries on', async () => {
    const clock = new FakeClock();
    const ids = faultyIds();
    const config = parseServerConfig({ host: '127.0.0.1', port: 0, logLevel: 'error', dbPath: dir.file('f.db') });
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    built = await buildApp(config, { store: await openStore(config), clock, ids, logger: { level: 'error', stream } });
    await built.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `ws://127.0.0.1:${(built.app.server.address() as AddressInfo).port}/v1/peer`;
    const connect = async () => {
      const p = await RawPeer.connect(url);
      peers.push(p);
      return p;
    };
    const memoryEqualsDatabase = async () => {
      await settle();
      await built!.authority.settled(); // what waits for a group-commit window commits now
      expect(sorted(built!.authority.dump())).toEqual(sorted(await built!.store.scheduler.load(clock.now(), Number.MAX_SAFE_INTEGER)));
    };

    const schema = flatSchema(3);
    const a = await connect();
    const b = await connect();
    a.send(helloFor('a', schema));
    const { resumeToken } = await a.waitType('welcome');
    const first = await a.waitType('assign');
    b.send(helloFor('b', schema));
    await b.waitType('assign');
    await memoryEqualsDatabase();

    // a finishes s1; granting it s3 blows up after s1 was already marked succeeded in memory.
    ids.broken = true;
    const before = a.received.length;
    a.send({ type: 'step.finished', leaseId: first.leaseId, stepId: first.stepId, ok: true, exitCode: 0, durationMs: 10 });
    const internal = await a.waitFor((m) => m.type === 'error', before);
    expect(internal).toMatchObject({ type: 'error', code: 'INTERNAL', message: 'internal error; see the authority log' });
    expect(JSON.stringify(internal)).not.toContain('exploded'); // no internals on the wire
    expect(await a.closed()).toBe(1011); // INTERNAL ends the connection (the error registry); the peer resumes
    await memoryEqualsDatabase();
    expect(built.authority.dump().steps.find((s) => s.stepId === first.stepId)).toMatchObject({ status: 'leased' });
    expect(a.received.slice(before).map((m) => m.type)).toEqual(['error']); // no step.update, no assign: nothing happened
    expect(logLines).toContainEqual(
      expect.objectContaining({ level: 50, msg: 'core input failed; it was rolled back and changed nothing', input: { kind: 'finished', connId: expect.any(Number) }, err: expect.objectContaining({ message: 'lease id source exploded', stack: expect.stringContaining('Cohort.grant') }) }),
    );

    // A new peer's hello fails the same way: it is not half-registered (its next hello is not DUPLICATE_PEER).
    const c = await connect();
    c.send(helloFor('c', schema));
    expect(await c.waitType('error')).toMatchObject({ code: 'INTERNAL' });
    expect(await c.closed()).toBe(1011);
    await memoryEqualsDatabase();
    expect(built.authority.dump().peers.map((p) => p.peerId).sort()).toEqual(['a', 'b']);

    // The fault is gone: a resumes its lease with its token and reports it again; c joins.
    ids.broken = false;
    const a2 = await connect();
    a2.send(helloFor('a', schema, { resumeToken, currentStep: { stepId: first.stepId, leaseId: first.leaseId } }));
    expect(await a2.waitType('welcome')).toMatchObject({ peerId: 'a', resumed: true });
    a2.send({ type: 'step.finished', leaseId: first.leaseId, stepId: first.stepId, ok: true, exitCode: 0, durationMs: 10 });
    expect(await a2.waitFor((m) => m.type === 'step.update' && m.stepId === first.stepId)).toMatchObject({ state: 'succeeded', peerId: 'a' });
    expect(await a2.waitType('assign')).toMatchObject({ stepId: 's3', attempt: 1 });
    const c2 = await connect();
    c2.send(helloFor('c', schema));
    expect(await c2.waitType('welcome')).toMatchObject({ peerId: 'c', resumed: false });
    await memoryEqualsDatabase();
  });
});
