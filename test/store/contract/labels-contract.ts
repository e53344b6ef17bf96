import { describe, expect, it } from 'vitest';
import { cohortDetailView, peerView } from '../../../server/core/read-model.js';
import type { CohortRecord, Write } from '../../../server/core/records.js';
import { schemaDigest } from '../../../shared/schema-digest.js';
import type { SchemaDef } from '../../../shared/schema-file.js';
import { cohortRecord, peerRecord, stepRecord } from './fixtures.js';
import type { StoreFactory } from './store-contract.js';
import { useStore } from './use-store.js';

/** Issue 19 in the store: a schema's `requires`, a peer's labels and an `unshared` step with its cause survive a restart and reach the read model. */
export function labelsContract(factory: StoreFactory): void {
  describe('labels and unshared steps', () => {
    const current = useStore(factory);
    const schema: SchemaDef = {
      id: 'ml',
      universe: '//...',
      steps: [
        { id: 'lint', target: '//lint/...', needs: [] },
        { id: 'train', target: '//train/...', needs: [], requires: ['arch:x64', 'gpu'] },
        { id: 'eval', target: '//eval/...', needs: ['train'] },
      ],
    };
    const cohort: CohortRecord = { ...cohortRecord({ id: 'c1', createdAtMs: 1000 }), schema, digest: schemaDigest(schema) };
    const writes: Write[] = [
      { table: 'cohort', row: cohort, created: true },
      { table: 'step', row: stepRecord('c1', 'lint', { status: 'succeeded', attempts: 1, builtBy: 'cpu1', durationMs: 500, resolvedAtMs: 1500 }) },
      { table: 'step', row: stepRecord('c1', 'train', { status: 'unshared', unsharedCause: { kind: 'no-capable-member', requires: ['arch:x64', 'gpu'], missing: ['gpu'] }, resolvedAtMs: 1600 }) },
      { table: 'step', row: stepRecord('c1', 'eval', { status: 'unshared', unsharedCause: { kind: 'need-unshared', need: 'train' }, resolvedAtMs: 1600 }) },
      { table: 'peer', row: { ...peerRecord('c1', 'cpu1', 1000), registration: { ...peerRecord('c1', 'cpu1', 1000).registration, labels: ['arch:x64', 'os:linux'] } } },
      { table: 'peer', row: peerRecord('c1', 'old', 1100) },
    ];

    it('loads them back as the core wrote them', async () => {
      const sut = current();
      await sut.store.scheduler.apply(writes);
      await sut.store.close(); // a restart: on SQLite a second writer is refused while the first is open
      const loaded = await (await sut.openAnother()).scheduler.load(2000, 24 * 3600_000);
      expect(loaded.cohorts[0]!.schema.steps[1]!.requires).toEqual(['arch:x64', 'gpu']);
      expect(loaded.cohorts[0]!.digest).toBe(schemaDigest(schema));
      const train = loaded.steps.find((s) => s.stepId === 'train')!;
      expect(train).toMatchObject({ status: 'unshared', failCause: null, unsharedCause: { kind: 'no-capable-member', requires: ['arch:x64', 'gpu'], missing: ['gpu'] } });
      expect(loaded.steps.find((s) => s.stepId === 'eval')).toMatchObject({ status: 'unshared', unsharedCause: { kind: 'need-unshared', need: 'train' } });
      const lint = loaded.steps.find((s) => s.stepId === 'lint')!;
      expect([lint.status, lint.failCause, lint.unsharedCause ?? null]).toEqual(['succeeded', null, null]);
      expect(loaded.peers.find((p) => p.peerId === 'cpu1')!.registration.labels).toEqual(['arch:x64', 'os:linux']);
      expect(loaded.peers.find((p) => p.peerId === 'old')!.registration).not.toHaveProperty('labels');
    });

    it('shows them in the read model: requires, unshared status and reason, peer labels', async () => {
      const { store } = current();
      await store.scheduler.apply(writes);
      const detail = cohortDetailView.parse(await store.readModel.cohortDetail('c1'));
      expect(detail.steps.map((s) => [s.stepId, s.status, s.requires])).toEqual([
        ['lint', 'succeeded', []],
        ['train', 'unshared', ['arch:x64', 'gpu']],
        ['eval', 'unshared', []],
      ]);
      expect(detail.steps[1]).toMatchObject({
        failReason: null,
        failCause: null,
        unsharedCause: { kind: 'no-capable-member', requires: ['arch:x64', 'gpu'], missing: ['gpu'] },
        unsharedReason: "no connected peer has gpu (requires arch:x64, gpu); each peer's universe build covers it",
      });
      expect(detail.steps[0]).toMatchObject({ unsharedCause: null, unsharedReason: null });
      expect(detail.peers.map((p) => [p.peerId, p.labels])).toEqual([
        ['cpu1', ['arch:x64', 'os:linux']],
        ['old', []],
      ]);
      const peers = await store.readModel.listPeers({ limit: 10 });
      for (const p of peers) peerView.parse(p);
      expect(peers.find((p) => p.peerId === 'cpu1')!.labels).toEqual(['arch:x64', 'os:linux']);
    });
  });
}
