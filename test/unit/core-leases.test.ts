import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../server/core/scheduler.js';
import { defaultCoreConfig } from '../../server/core/core-types.js';
import { v1Delivery } from '../../server/http/v1-frames.js';
import { allSent, CoreHarness, counterIds, messagesIn, snapshotFromWrites } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';

const grace = defaultCoreConfig.leaseGraceMs;

describe('leases and grace', () => {
  it('a dropped peer keeps its lease until exactly graceEndsAtMs, then the step is re-leased', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.hello('p2');
    const lease = h.lastAssign('p1')!;
    h.disconnect('p1');
    expect(h.scheduler.nextDeadlineMs()).toBe(h.clock.now() + grace);
    const before = h.advance(grace - 1);
    expect(allSent(before)).toEqual([]);
    const at = h.advance(1);
    expect(messagesIn(at, h.conns.get('p2')!)).toEqual([{ type: 'assign', cohortId: 'c1', stepId: 's1', leaseId: 'l2', attempt: 2, backup: false }]);
    expect(at.writes).toContainEqual({ table: 'lease', row: expect.objectContaining({ leaseId: lease.leaseId, end: { kind: 'lost', why: 'grace-expired' } }) });
    expect(at.effects).toContainEqual({ kind: 'stat', stat: 'lease.expired', value: 1 });
  });

  it('a reconnect within grace with the token and current step continues the lease', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1');
    const lease = h.lastAssign('p1')!;
    h.disconnect('p1');
    h.clock.advance(grace - 1);
    const out = h.resume('p1', { stepId: lease.stepId, leaseId: lease.leaseId });
    expect(messagesIn(out, h.conns.get('p1')!)).toEqual([
      { type: 'welcome', protocol: 1, peerId: 'p1', resumeToken: 'tok-p1-1', resumed: true, cohort: { id: 'c1', peers: 1, steps: 2, resolved: 0, succeeded: [] }, pingIntervalMs: 15_000 },
    ]);
    h.advance(grace);
    // Still the only lease; finishing it works and the next step follows.
    const done = h.finish('p1', lease.leaseId, lease.stepId);
    expect(messagesIn(done, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update', 'assign']);
  });

  it('a resume without the step it held gives the step back', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.disconnect('p1');
    const out = h.resume('p1', null);
    expect(messagesIn(out, h.conns.get('p1')!).map((m) => m.type)).toEqual(['welcome', 'assign']);
    expect(h.lastAssign('p1')).toMatchObject({ stepId: 's1', attempt: 2 });
  });

  it('a completion from a lost lease counts once when the step is still unresolved', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    const lease = h.lastAssign('p1')!;
    h.disconnect('p1');
    h.advance(grace); // lost; nobody else to take it
    const out = h.resume('p1', { stepId: 's1', leaseId: lease.leaseId });
    // The step is unresolved, so p1 keeps running it: no abort, no new assign.
    expect(messagesIn(out, h.conns.get('p1')!).map((m) => m.type)).toEqual(['welcome']);
    const done = h.finish('p1', lease.leaseId, 's1');
    expect(done.writes.filter((w) => w.table === 'step' && w.row.status === 'succeeded')).toHaveLength(1);
    expect(messagesIn(done, h.conns.get('p1')!).map((m) => m.type)).toEqual(['step.update', 'complete']);
    // Reported again: fenced, nothing written.
    const again = h.finish('p1', lease.leaseId, 's1');
    expect(messagesIn(again, h.conns.get('p1')!)).toEqual([
      { type: 'error', code: 'STALE_LEASE', message: `lease ${lease.leaseId} already ended (lost) and step "s1" is succeeded; this completion changed nothing`, retryable: false, stepId: 's1', leaseId: lease.leaseId },
    ]);
    expect(again.writes.filter((w) => w.table !== 'event')).toEqual([]);
  });

  it('a completion from a lost lease is fenced when the step was resolved by the re-lease', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.hello('p2');
    const old = h.lastAssign('p1')!;
    h.disconnect('p1');
    h.advance(grace);
    const relet = h.lastAssign('p2')!;
    h.finish('p2', relet.leaseId, 's1');
    h.resume('p1', { stepId: 's1', leaseId: old.leaseId });
    // The step is resolved: p1 was told to abort on resume...
    expect(h.sent('p1')).toContainEqual({ type: 'abort', stepId: 's1', leaseId: old.leaseId, reason: 'lease-lost' });
    // ...and if it reports anyway, nothing changes.
    const late = h.finish('p1', old.leaseId, 's1');
    expect(messagesIn(late, h.conns.get('p1')!)[0]).toMatchObject({ type: 'error', code: 'STALE_LEASE' });
    expect(late.writes.filter((w) => w.table !== 'event')).toEqual([]);
  });

  it('peer A cannot finish peer B\'s lease', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('a');
    h.hello('b');
    const bLease = h.lastAssign('b')!;
    const out = h.finish('a', bLease.leaseId, bLease.stepId);
    expect(messagesIn(out, h.conns.get('a')!)).toEqual([
      { type: 'error', code: 'LEASE_NOT_HELD', message: `lease ${bLease.leaseId} belongs to another peer; the result was not recorded`, retryable: false, stepId: bLease.stepId, leaseId: bLease.leaseId },
    ]);
    expect(out.writes.filter((w) => w.table !== 'event')).toEqual([]);
  });

  it('refuses a completion naming the wrong step or an unknown lease', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('a');
    const lease = h.lastAssign('a')!;
    expect(messagesIn(h.finish('a', lease.leaseId, 's2'), h.conns.get('a')!)[0]).toMatchObject({ code: 'UNKNOWN_STEP' });
    expect(messagesIn(h.finish('a', 'l999', 's1'), h.conns.get('a')!)[0]).toMatchObject({ code: 'STALE_LEASE' });
  });

  it('bye gives the lease back at once, without grace', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.hello('p2');
    const out = h.bye('p1');
    expect(messagesIn(out, h.conns.get('p2')!)).toEqual([{ type: 'assign', cohortId: 'c1', stepId: 's1', leaseId: 'l2', attempt: 2, backup: false }]);
  });

  it('peers that cannot resume (Task Director clients) lose their lease at once to a waiting peer', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('td1', { resumable: false });
    h.hello('td2', { resumable: false });
    const out = h.disconnect('td1');
    expect(messagesIn(out, h.conns.get('td2')!)).toEqual([{ type: 'assign', cohortId: 'c1', stepId: 's1', leaseId: 'l2', attempt: 2, backup: false }]);
  });
});

describe('duplicate peer ids', () => {
  it('refuses a second connection without the token', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    const out = h.hello('p1', { connId: 99 });
    expect(out.effects).toEqual([{ kind: 'refuse', connId: 99, refusal: { kind: 'duplicate-peer', peerId: 'p1', heldBy: 'connection' } }]);
    expect(v1Delivery(out.effects[0]!)).toEqual({
      messages: [{ type: 'error', code: 'DUPLICATE_PEER', message: 'peer id "p1" is held by another connection; resume with its token or use another peer id', retryable: false }],
      close: { code: 4409, reason: 'DUPLICATE_PEER' },
    });
    expect(out.writes).toEqual([]);
  });

  it('a resume with the right token takes over and closes the old connection', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1', { connId: 1 });
    const lease = h.lastAssign('p1')!;
    const out = h.hello('p1', { connId: 2, token: 'tok-p1-1', currentStep: { stepId: 's1', leaseId: lease.leaseId } });
    expect(out.effects[0]).toEqual({ kind: 'superseded', connId: 1 });
    expect(v1Delivery(out.effects[0]!).close).toEqual({ code: 4000, reason: 'replaced by a resumed connection' });
    expect(messagesIn(out, 2)[0]).toMatchObject({ type: 'welcome', resumed: true });
  });

  it('a wrong token is a duplicate, not a takeover', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1', { connId: 1 });
    const out = h.hello('p1', { connId: 2, token: 'guess' });
    expect(messagesIn(out, 2)[0]).toMatchObject({ type: 'error', code: 'DUPLICATE_PEER' });
  });
});

describe('restart', () => {
  it('restores cohorts, leases in grace and memos from the store; a resume continues', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('p1', { reg: { baseSha: 'a'.repeat(40) } });
    h.hello('p2', { reg: { baseSha: 'a'.repeat(40) } });
    const l1 = h.lastAssign('p1')!;
    h.finish('p2', h.lastAssign('p2')!.leaseId, h.lastAssign('p2')!.stepId);
    const l2 = h.lastAssign('p2')!;
    const snapshot = snapshotFromWrites(h.writes);

    // A new process: a fresh scheduler from the snapshot.
    const now = h.clock.advance(5_000);
    const fresh = new Scheduler(defaultCoreConfig, { cohortId: () => 'c-new', leaseId: () => 'l-new' });
    const restored = fresh.restore(snapshot, now);
    const peerRows = restored.writes.filter((w) => w.table === 'peer');
    expect(peerRows.map((w) => w.table === 'peer' && [w.row.peerId, w.row.status, w.row.graceEndsAtMs])).toEqual([
      ['p1', 'disconnected', now + grace],
      ['p2', 'disconnected', now + grace],
    ]);
    expect(fresh.counts()).toEqual({ peersConnected: 0, cohortsOpen: 1, leasesLive: 2 });
    const out = fresh.handle(
      {
        kind: 'hello',
        connId: 7,
        peerId: 'p1',
        registration: snapshot.peers.find((p) => p.peerId === 'p1')!.registration,
        schema: flatSchema(3),
        digest: snapshot.cohorts[0]!.digest,
        presentedToken: { token: 'tok-p1-1', hash: 'h(tok-p1-1)' },
        freshToken: { token: 'x', hash: 'h(x)' },
        currentStep: { stepId: l1.stepId, leaseId: l1.leaseId },
        resumable: true,
      },
      now + 1,
    );
    expect(messagesIn(out, 7).map((m) => m.type)).toEqual(['welcome']);
    // p2 never comes back: its step goes to p1 once p1 is free and p2's grace is over.
    fresh.handle({ kind: 'finished', connId: 7, leaseId: l1.leaseId, stepId: l1.stepId, ok: true, exitCode: 0, durationMs: 5, logTail: null }, now + 2);
    const expired = fresh.handle({ kind: 'tick' }, now + grace);
    expect(messagesIn(expired, 7)).toEqual([{ type: 'assign', cohortId: 'c1', stepId: l2.stepId, leaseId: 'l-new', attempt: 2, backup: false }]);
  });

  it('uses an injected id source and no clock of its own', () => {
    const ids = counterIds();
    expect([ids.cohortId(), ids.leaseId(), ids.leaseId()]).toEqual(['c1', 'l1', 'l2']);
  });
});
