import { describe, expect, it } from 'vitest';
import { cohortDetailView, cohortView, peerView, statsView } from '../../../server/core/read-model.js';
import type { Write } from '../../../server/core/records.js';
import { cohortRecord, eventWrite, leaseRecord, peerRecord, seedCohortWrites, stepRecord } from './fixtures.js';
import type { StoreFactory } from './store-contract.js';
import { useStore } from './use-store.js';

const otherRepo = 'git@example.com:acme/other.git';

/** Four cohorts: two repos, two pipelines, open / complete / cancelled, created at 1000, 2000, 3000, 4000. */
function history(): Write[] {
  return [
    ...seedCohortWrites({ id: 'c1', createdAtMs: 1000, pipelineName: 'check' }),
    ...seedCohortWrites({ id: 'c2', createdAtMs: 2000, pipelineName: 'gate', pipelineType: 'dependent', status: 'cancelled', peers: ['p1', 'p2'] }),
    ...seedCohortWrites({ id: 'c3', createdAtMs: 3000, repo: otherRepo, pipelineName: 'check', steps: ['x', 'y', 'z'] }),
    ...seedCohortWrites({ id: 'c4', createdAtMs: 4000, pipelineName: 'check', status: 'open', peers: ['p1', 'p2'], cohortKey: 'run-9' }),
  ];
}

export function readModelContract(factory: StoreFactory): void {
  describe('read model', () => {
    const current = useStore(factory);

    it('lists cohorts newest first with counts, narrowed by every filter', async () => {
      const { store } = current();
      await store.scheduler.apply(history());
      const list = (filter: Parameters<typeof store.readModel.listCohorts>[0]) => store.readModel.listCohorts(filter).then((cs) => cs.map((c) => c.cohortId));
      const all = await store.readModel.listCohorts({ limit: 100 });
      for (const c of all) cohortView.parse(c);
      expect(all.map((c) => c.cohortId)).toEqual(['c4', 'c3', 'c2', 'c1']);
      expect(all[0]).toMatchObject({
        status: 'open',
        createdAtMs: 4000,
        resolvedAtMs: null,
        outcome: null,
        pipelineNames: ['check'],
        cohortKey: 'run-9',
        steps: { total: 2, pending: 1, leased: 1, succeeded: 0, failed: 0, fromMemo: 0 },
        peers: 2,
      });
      expect(all[1]).toMatchObject({ repo: otherRepo, cohortKey: null, status: 'complete', outcome: { kind: 'succeeded' }, resolvedAtMs: 4000, secondsSaved: 12.5, steps: { total: 3, succeeded: 3 }, peers: 1 });
      expect(await list({ limit: 2 })).toEqual(['c4', 'c3']);
      expect(await list({ status: 'complete', limit: 100 })).toEqual(['c3', 'c1']);
      expect(await list({ repo: otherRepo, limit: 100 })).toEqual(['c3']);
      expect(await list({ pipelineType: 'dependent', limit: 100 })).toEqual(['c2']);
      expect(await list({ pipelineName: 'check', limit: 100 })).toEqual(['c4', 'c3', 'c1']);
      expect(await list({ pipelineName: 'check', status: 'complete', repo: otherRepo, limit: 100 })).toEqual(['c3']);
      expect(await list({ createdBeforeMs: 3000, limit: 100 })).toEqual(['c2', 'c1']);
      expect(await list({ pipelineName: 'nightly', limit: 100 })).toEqual([]);
    });

    it('filters by outcome and pages by (created time, id) without skipping a tie', async () => {
      const { store } = current();
      await store.scheduler.apply([...history(), ...seedCohortWrites({ id: 'c5', createdAtMs: 4000 }), ...seedCohortWrites({ id: 'c6', createdAtMs: 4000, status: 'cancelled' })]);
      await store.scheduler.apply([
        { table: 'cohort', row: { ...cohortRecord({ id: 'c5', createdAtMs: 4000 }), outcome: { kind: 'failed', failedSteps: 1 } } },
        { table: 'cohort', row: { ...cohortRecord({ id: 'c6', createdAtMs: 4000, status: 'cancelled' }), outcome: { kind: 'cancelled', by: 'abandoned' } } },
      ]);
      const list = (filter: Parameters<typeof store.readModel.listCohorts>[0]) => store.readModel.listCohorts(filter).then((cs) => cs.map((c) => c.cohortId));
      expect(await list({ limit: 100 })).toEqual(['c6', 'c5', 'c4', 'c3', 'c2', 'c1']);
      expect(await list({ outcome: 'succeeded', limit: 100 })).toEqual(['c3', 'c1']);
      expect(await list({ outcome: 'failed', limit: 100 })).toEqual(['c5']);
      expect(await list({ outcome: 'cancelled', limit: 100 })).toEqual(['c2']);
      expect(await list({ outcome: 'abandoned', limit: 100 })).toEqual(['c6']);
      expect(await list({ outcome: 'succeeded', repo: otherRepo, limit: 100 })).toEqual(['c3']);
      // Pages of two: each cursor is the last row's (created time, id); c4 and c5 share a millisecond.
      expect(await list({ limit: 2 })).toEqual(['c6', 'c5']);
      expect(await list({ createdBeforeMs: 4000, beforeCohortId: 'c5', limit: 2 })).toEqual(['c4', 'c3']);
      expect(await list({ createdBeforeMs: 3000, beforeCohortId: 'c3', limit: 2 })).toEqual(['c2', 'c1']);
      expect(await list({ createdBeforeMs: 1000, beforeCohortId: 'c1', limit: 2 })).toEqual([]);
    });

    it('refuses a limit outside 1..1000', async () => {
      const { store } = current();
      await expect(store.readModel.listCohorts({ limit: 0 })).rejects.toThrow(/limit/);
      await expect(store.readModel.listPeers({ limit: 1001 })).rejects.toThrow(/limit/);
    });

    it('shows a cohort with its steps in schema order, leases in grant order, peers and timeline', async () => {
      const { store } = current();
      await store.scheduler.apply(seedCohortWrites({ id: 'c1', status: 'open', createdAtMs: 1000, steps: ['a', 'b', 'c'], peers: ['p1', 'p2'] }));
      await store.scheduler.apply([
        { table: 'step', row: stepRecord('c1', 'a', { status: 'failed', attempts: 2, failures: 2, failedOn: ['p1', 'p2'], failCause: { kind: 'attempts-exhausted', failures: 2, peerId: 'p2', exitCode: 2 }, failPeerId: 'p2', failExitCode: 2, failLogTail: 'boom', resolvedAtMs: 1500 }) },
        { table: 'lease', row: leaseRecord('c1', 'a', 'c1-l1', 'p1', 1010, { endedAtMs: 1100, end: { kind: 'failed', exitCode: 2 } }) },
        { table: 'lease', row: leaseRecord('c1', 'a', 'c1-l2', 'p2', 1200, { attempt: 2, endedAtMs: 1500, end: { kind: 'failed', exitCode: 2 } }) },
        { table: 'peer', row: peerRecord('c1', 'p2', 1001, { status: 'disconnected', graceEndsAtMs: 9000 }) },
        eventWrite('c1', 1500, 'step.failed', { stepId: 'a', peerId: 'p2', detail: 'exit 2' }),
      ]);
      const detail = (await store.readModel.cohortDetail('c1'))!;
      cohortDetailView.parse(detail);
      expect(detail.cohort).toMatchObject({ cohortId: 'c1', status: 'open', steps: { total: 3, failed: 1, pending: 2 } });
      expect(detail.steps.map((s) => [s.stepId, s.target, s.needs, s.estimateSec, s.status])).toEqual([
        ['a', '//a/...', [], 30, 'failed'],
        ['b', '//b/...', ['a'], null, 'pending'],
        ['c', '//c/...', ['b'], null, 'pending'],
      ]);
      expect(detail.steps[0]).toMatchObject({
        attempts: 2,
        failures: 2,
        failedOn: ['p1', 'p2'],
        failCause: { kind: 'attempts-exhausted', failures: 2, peerId: 'p2', exitCode: 2 },
        failReason: expect.stringContaining('failed 2 times'),
        failPeerId: 'p2', failExitCode: 2, failLogTail: 'boom', resolvedAtMs: 1500 });
      expect(detail.leases).toEqual([
        { leaseId: 'c1-l1', stepId: 'a', peerId: 'p1', attempt: 1, backup: false, startedAtMs: 1010, endedAtMs: 1100, outcome: 'failed', end: { kind: 'failed', exitCode: 2 } },
        { leaseId: 'c1-l2', stepId: 'a', peerId: 'p2', attempt: 2, backup: false, startedAtMs: 1200, endedAtMs: 1500, outcome: 'failed', end: { kind: 'failed', exitCode: 2 } },
      ]);
      expect(detail.peers.map((p) => [p.peerId, p.status, p.graceEndsAtMs])).toEqual([
        ['p1', 'connected', null],
        ['p2', 'disconnected', 9000],
      ]);
      expect(detail.peers[0]).toMatchObject({ pipelineName: 'check', pipelineType: 'independent', repo: 'git@example.com:acme/mono.git', resumable: true });
      expect(detail.timeline.map((e) => e.kind)).toEqual(['cohort.created', 'peer.joined', 'peer.joined', 'step.leased', 'step.failed']);
      const seqs = detail.timeline.map((e) => e.seq);
      expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(detail.timeline[4]).toMatchObject({ atMs: 1500, stepId: 'a', peerId: 'p2', detail: 'exit 2' });
      expect(await store.readModel.cohortDetail('c-none')).toBeNull();
    });

    it('lists peers newest first, by status and cohort', async () => {
      const { store } = current();
      await store.scheduler.apply(history());
      const peers = await store.readModel.listPeers({ limit: 100 });
      for (const p of peers) peerView.parse(p);
      expect(peers.map((p) => `${p.cohortId}/${p.peerId}`)).toEqual(['c4/p2', 'c4/p1', 'c3/p1', 'c2/p2', 'c2/p1', 'c1/p1']);
      expect((await store.readModel.listPeers({ statuses: ['connected'], limit: 100 })).map((p) => `${p.cohortId}/${p.peerId}`)).toEqual(['c4/p2', 'c4/p1']);
      expect((await store.readModel.listPeers({ cohortId: 'c2', limit: 1 })).map((p) => p.peerId)).toEqual(['p2']);
    });

    it('counts cohorts, steps, leases, peers and seconds saved', async () => {
      const { store } = current();
      expect(statsView.parse(await store.readModel.stats())).toEqual({
        cohorts: { open: 0, complete: 0, cancelled: 0 },
        steps: { succeeded: 0, reusedFromMemo: 0, failed: 0, pending: 0 },
        leases: { granted: 0, lost: 0, backups: 0 },
        peers: { connected: 0, inGrace: 0 },
        secondsSaved: 0,
      });
      await store.scheduler.apply(history());
      await store.scheduler.apply([
        { table: 'lease', row: leaseRecord('c4', 'b', 'c4-backup', 'p2', 5000, { backup: true, endedAtMs: 5100, end: { kind: 'lost', why: 'grace-expired' } }) },
        { table: 'peer', row: peerRecord('c4', 'p2', 4001, { status: 'disconnected', graceEndsAtMs: 9000 }) },
        { table: 'step', row: stepRecord('c4', 'b', { status: 'succeeded', fromMemo: true, resolvedAtMs: 4500 }) },
      ]);
      expect(await store.readModel.stats()).toEqual({
        cohorts: { open: 1, complete: 2, cancelled: 1 },
        steps: { succeeded: 7, reusedFromMemo: 1, failed: 0, pending: 1 },
        leases: { granted: 9, lost: 1, backups: 1 },
        peers: { connected: 1, inGrace: 1 },
        secondsSaved: 25,
      });
    });
  });
}
