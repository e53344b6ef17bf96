import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreConflictError } from '../../server/core/store-port.js';
import { LeaderLease } from '../../server/ha/leader-lease.js';
import { openPostgresStore, type PostgresStore } from '../../server/store/postgres/postgres-store.js';
import { postgresBinDir, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { eventWrite, seedCohortWrites } from './contract/fixtures.js';

/**
 * The leader lease row on a real PostgreSQL: one holder at a time, a term that
 * rises on every takeover, expiry on the database clock, and commits fenced by
 * the term. Expiry is produced by moving the row's expiry into the past (the
 * database's own clock decides), never by sleeping.
 */
const pgBin = postgresBinDir();

describe.skipIf(pgBin === null)('leader lease on PostgreSQL', () => {
  let cluster: PostgresCluster | null = null;
  let databases = 0;
  let db = '';
  const opened: PostgresStore[] = [];
  beforeAll(async () => {
    cluster = await startPostgresCluster(pgBin!);
  }, 120_000);
  afterAll(() => cluster?.stop());
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  async function open(): Promise<PostgresStore> {
    if (db === '') throw new Error('no database');
    const store = await openPostgresStore(cluster!.url(db), { maxConnections: 2 });
    opened.push(store);
    return store;
  }
  async function fresh(): Promise<[PostgresStore, PostgresStore]> {
    db = `lease_${++databases}`;
    cluster!.createDatabase(db);
    return [await open(), await open()];
  }
  const expire = (): string => cluster!.psql(db, "UPDATE leader_lease SET expires_at = now() - interval '1 millisecond'");
  const row = (): string => cluster!.psql(db, 'SELECT term, holder, expires_at > now() FROM leader_lease').trim();

  it('grants one holder at a time; a live lease is renewed, never taken', async () => {
    const [s1, s2] = await fresh();
    const a = new LeaderLease(s1.sql, { holder: 'a', ttlSec: 30 });
    const b = new LeaderLease(s2.sql, { holder: 'b', ttlSec: 30 });
    expect(await a.tryAcquire()).toBe(1);
    expect(await b.tryAcquire()).toBeNull();
    expect(await b.current()).toEqual({ term: 1, holder: 'a', live: true });
    expect(await a.renew()).toBe(true);
    expect(await b.renew()).toBe(false);
    expect(row()).toBe('1|a|t');
  });

  it('an expired lease is taken with a higher term; the old holder can no longer renew', async () => {
    const [s1, s2] = await fresh();
    const a = new LeaderLease(s1.sql, { holder: 'a', ttlSec: 30 });
    const b = new LeaderLease(s2.sql, { holder: 'b', ttlSec: 30 });
    await a.tryAcquire();
    expire();
    expect(await a.current()).toEqual({ term: 1, holder: 'a', live: false });
    expect(await b.tryAcquire()).toBe(2);
    expect(await a.renew()).toBe(false);
    expect(a.term).toBeNull();
    expect(row()).toBe('2|b|t');
  });

  it('an expired lease nobody took is still renewable by its holder (no one else could have written)', async () => {
    const [s1] = await fresh();
    const a = new LeaderLease(s1.sql, { holder: 'a', ttlSec: 30 });
    await a.tryAcquire();
    expire();
    expect(await a.renew()).toBe(true);
    expect(row()).toBe('1|a|t');
  });

  it('release frees the row at once; only the holder of the term can release it', async () => {
    const [s1, s2] = await fresh();
    const a = new LeaderLease(s1.sql, { holder: 'a', ttlSec: 600 });
    const b = new LeaderLease(s2.sql, { holder: 'b', ttlSec: 600 });
    await a.tryAcquire();
    expect(await b.release()).toBe(false);
    expect(await a.release()).toBe(true);
    expect(await b.tryAcquire()).toBe(2);
    expect(await a.release()).toBe(false);
    expect(row()).toBe('2|b|t');
  });

  it('fences every commit by the term: after a takeover the deposed writer commits nothing', async () => {
    const [s1, s2] = await fresh();
    const a = new LeaderLease(s1.sql, { holder: 'a', ttlSec: 30 });
    const b = new LeaderLease(s2.sql, { holder: 'b', ttlSec: 30 });
    s1.scheduler.fenceByLeaderTerm({ term: (await a.tryAcquire())!, holder: 'a' });
    await s1.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000 }));
    await s1.scheduler.apply([eventWrite('c1', 2000, 'by.a')]);
    expire();
    await b.tryAcquire();
    // The new leader has not even loaded yet: the term alone fences the old one.
    const err = await s1.scheduler.apply([eventWrite('c1', 3000, 'by.a.deposed')]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreConflictError);
    expect((err as StoreConflictError).kind).toBe('writer-deposed');
    expect((err as StoreConflictError).message).toMatch(/leader term 1.*leader term 2 held by b/);
    const kinds = (await s2.readModel.cohortDetail('c1'))!.timeline.map((e) => e.kind);
    expect(kinds).toContain('by.a');
    expect(kinds).not.toContain('by.a.deposed');
  });
});
