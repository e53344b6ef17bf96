import { describe, expect, it } from 'vitest';
import { defaultCoreConfig } from '../../server/core/core-types.js';
import { Scheduler } from '../../server/core/scheduler.js';
import { CoreHarness, messagesIn, registration, snapshotFromWrites } from '../helpers/core-harness.js';
import { flatSchema } from '../helpers/schemas.js';
import { schemaDigest } from '../../shared/schema-digest.js';

/**
 * A peer's registration token (hello `registrationToken`): the authority commits a join, then the
 * welcome never reaches the peer (the connection drops, or the authority dies). The peer says hello
 * again with the same token and resumes the registration it made instead of being refused as a
 * duplicate of itself.
 */

const grace = defaultCoreConfig.leaseGraceMs;
const welcomeOf = (token: string, resumed: boolean, steps: number) => ({
  type: 'welcome',
  protocol: 1,
  peerId: 'p1',
  resumeToken: token,
  resumed,
  cohort: { id: 'c1', peers: 1, steps, resolved: 0, succeeded: [] },
  pingIntervalMs: 15_000,
});

describe('registration token', () => {
  it('becomes the resume token of the registration it starts', () => {
    const h = new CoreHarness(flatSchema(2));
    const out = h.hello('p1', { registrationToken: 'R1' });
    expect(messagesIn(out, h.conns.get('p1')!)[0]).toEqual(welcomeOf('R1', false, 2));
    expect(out.writes).toContainEqual({ table: 'peer', row: expect.objectContaining({ peerId: 'p1', tokenHash: 'h(R1)' }) });
  });

  it('a hello whose welcome was lost (connection dropped) resumes with the same token; its lease is sent again, not lost', () => {
    const h = new CoreHarness(flatSchema(2));
    h.hello('p1', { connId: 1, registrationToken: 'R1' });
    const lease = h.lastAssign('p1')!;
    h.disconnect('p1');
    h.clock.advance(grace - 1);
    const out = h.hello('p1', { connId: 2, registrationToken: 'R1' });
    expect(messagesIn(out, 2)).toEqual([welcomeOf('R1', true, 2), { type: 'assign', cohortId: 'c1', stepId: lease.stepId, leaseId: lease.leaseId, attempt: 1, backup: false }]);
    expect(out.writes.filter((w) => w.table === 'lease')).toEqual([]);
    // Past the old grace nothing expires, and the resent lease's report counts.
    expect(messagesIn(h.advance(grace), 2)).toEqual([]);
    const done = h.finish('p1', lease.leaseId, lease.stepId);
    expect(messagesIn(done, 2).map((m) => m.type)).toEqual(['step.update', 'assign']);
  });

  it('on a registration still connected (the drop not noticed yet), the repeat takes over and closes the old connection', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1', { connId: 1, registrationToken: 'R1' });
    const out = h.hello('p1', { connId: 2, registrationToken: 'R1' });
    expect(out.effects[0]).toEqual({ kind: 'superseded', connId: 1 });
    expect(messagesIn(out, 2).map((m) => m.type)).toEqual(['welcome', 'assign']);
  });

  it('another token is still a duplicate, while connected and in grace', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1', { connId: 1, registrationToken: 'R1' });
    const connected = h.hello('p1', { connId: 2, registrationToken: 'R2' });
    expect(connected.effects).toEqual([{ kind: 'refuse', connId: 2, refusal: { kind: 'duplicate-peer', peerId: 'p1', heldBy: 'connection' } }]);
    h.conns.set('p1', 1);
    h.disconnect('p1');
    const inGrace = h.hello('p1', { connId: 3, registrationToken: 'R2' });
    expect(inGrace.effects).toEqual([{ kind: 'refuse', connId: 3, refusal: { kind: 'duplicate-peer', peerId: 'p1', heldBy: 'grace' } }]);
    // Nor does a registration token stand in for a wrong resume token of another process.
    const guessed = h.hello('p1', { connId: 4, token: 'guess', registrationToken: 'R3' });
    expect(guessed.effects).toEqual([{ kind: 'refuse', connId: 4, refusal: { kind: 'duplicate-peer', peerId: 'p1', heldBy: 'grace' } }]);
  });

  it('after a restart the restored registration (in grace) resumes with its token and keeps its lease', () => {
    const h = new CoreHarness(flatSchema(3));
    h.hello('p1', { registrationToken: 'R1' });
    h.hello('p2', { registrationToken: 'R2' });
    const l1 = h.lastAssign('p1')!;
    const snapshot = snapshotFromWrites(h.writes);

    // A new process, restored from what was committed; neither welcome was delivered.
    const now = h.clock.advance(5_000);
    const fresh = new Scheduler(defaultCoreConfig, { cohortId: () => 'c-new', leaseId: () => 'l-new' });
    fresh.restore(snapshot, now);
    const schema = flatSchema(3);
    const hello = (connId: number, token: string) =>
      fresh.handle(
        {
          kind: 'hello',
          connId,
          peerId: 'p1',
          registration: registration(),
          schema,
          digest: schemaDigest(schema),
          presentedToken: null,
          freshToken: { token, hash: `h(${token})` },
          registrationToken: { token, hash: `h(${token})` },
          currentStep: null,
          resumable: true,
        },
        now + 1,
      );
    expect(messagesIn(hello(6, 'R9'), 6)[0]).toMatchObject({ type: 'error', code: 'DUPLICATE_PEER' });
    const out = hello(7, 'R1');
    expect(out.fault).toBeNull();
    fresh.checkInvariants();
    expect(messagesIn(out, 7)).toEqual([
      // p2 is a member too (restored, in grace).
      { ...welcomeOf('R1', true, 3), cohort: { id: 'c1', peers: 2, steps: 3, resolved: 0, succeeded: [] } },
      { type: 'assign', cohortId: 'c1', stepId: l1.stepId, leaseId: l1.leaseId, attempt: 1, backup: false },
    ]);
    const done = fresh.handle({ kind: 'finished', connId: 7, leaseId: l1.leaseId, stepId: l1.stepId, ok: true, exitCode: 0, durationMs: 5, logTail: null }, now + 2);
    expect(messagesIn(done, 7).map((m) => m.type)).toEqual(['step.update', 'assign']);
  });

  it('does not count as a resume token for matching: a new independent peer without a base sha still starts a new cohort', () => {
    const h = new CoreHarness(flatSchema(1));
    h.hello('p1');
    h.finish('p1', h.lastAssign('p1')!.leaseId, 's1');
    h.bye('p1');
    // Only a rejoining peer (one that presents a resume token) may join the resolved cohort c1.
    const rejoining = h.hello('p3', { token: 'stale' });
    expect(messagesIn(rejoining, h.conns.get('p3')!)[0]).toMatchObject({ type: 'welcome', resumed: false, cohort: { id: 'c1' } });
    const fresh = h.hello('p2', { registrationToken: 'R2' });
    expect(messagesIn(fresh, h.conns.get('p2')!)[0]).toMatchObject({ type: 'welcome', resumed: false, cohort: { id: 'c2' } });
  });
});
