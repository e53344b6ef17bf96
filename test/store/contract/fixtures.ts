import { pendingStepRecord, type CohortRecord, type CohortStatus, type LeaseRecord, type PeerRecord, type PipelineType, type StepRecord, type Write } from '../../../server/core/records.js';
import type { SchemaDef } from '../../../shared/schema-file.js';
import { schemaDigest } from '../../../shared/schema-digest.js';

/**
 * Hand-built rows for the store contract suite: exact control over statuses
 * and times, independent of how the core happens to produce them.
 */

export interface SeedCohort {
  readonly id: string;
  readonly repo?: string;
  readonly pipelineName?: string;
  readonly pipelineType?: PipelineType;
  readonly cohortKey?: string;
  readonly status?: CohortStatus;
  readonly createdAtMs: number;
  /** Defaults to createdAtMs + 1000 for a resolved cohort, null for an open one. */
  readonly resolvedAtMs?: number | null;
  /** Step ids in schema order; each needs the one before. Default a, b. */
  readonly steps?: readonly string[];
  /** Peer ids, joined in this order. Default p1. */
  readonly peers?: readonly string[];
}

export function schemaFor(stepIds: readonly string[]): SchemaDef {
  return {
    id: 'contract',
    universe: '//...',
    steps: stepIds.map((id, i) => (i === 0 ? { id, target: `//${id}/...`, needs: [], estimateSec: 30 } : { id, target: `//${id}/...`, needs: [stepIds[i - 1]!] })),
  };
}

export function cohortRecord(seed: SeedCohort): CohortRecord {
  const status = seed.status ?? 'complete';
  const schema = schemaFor(seed.steps ?? ['a', 'b']);
  return {
    cohortId: seed.id,
    repo: seed.repo ?? 'git@example.com:acme/mono.git',
    baseRef: 'main',
    cacheId: 'cache-1',
    pipelineType: seed.pipelineType ?? 'independent',
    isolated: false,
    schema,
    digest: schemaDigest(schema),
    baseSha: 'd'.repeat(40),
    cohortKey: seed.cohortKey ?? null,
    patchsets: ['refs/changes/1'],
    status,
    createdAtMs: seed.createdAtMs,
    resolvedAtMs: seed.resolvedAtMs !== undefined ? seed.resolvedAtMs : status === 'open' ? null : seed.createdAtMs + 1000,
    lastActivityMs: seed.createdAtMs + 1000,
    secondsSaved: status === 'complete' ? 12.5 : null,
    outcome: status === 'open' ? null : status === 'cancelled' ? { kind: 'cancelled', by: 'admin' } : { kind: 'succeeded' },
  };
}

export function stepRecord(cohortId: string, stepId: string, over: Partial<StepRecord> = {}): StepRecord {
  return { ...pendingStepRecord(cohortId, stepId), ...over };
}

export function peerRecord(cohortId: string, peerId: string, joinedAtMs: number, over: Partial<PeerRecord> = {}, pipeline: { name?: string; type?: PipelineType; repo?: string } = {}): PeerRecord {
  return {
    peerId,
    cohortId,
    tokenHash: `hash-${peerId}`,
    registration: {
      repo: pipeline.repo ?? 'git@example.com:acme/mono.git',
      baseRef: 'main',
      baseSha: 'd'.repeat(40),
      patchsets: ['refs/changes/1'],
      changeRef: null,
      pipelineName: pipeline.name ?? 'check',
      pipelineType: pipeline.type ?? 'independent',
      isolated: false,
      cacheId: 'cache-1',
    },
    resumable: true,
    status: 'connected',
    joinedAtMs,
    graceEndsAtMs: null,
    ...over,
  };
}

export function leaseRecord(cohortId: string, stepId: string, leaseId: string, peerId: string, startedAtMs: number, over: Partial<LeaseRecord> = {}): LeaseRecord {
  return { leaseId, cohortId, stepId, peerId, attempt: 1, backup: false, startedAtMs, endedAtMs: null, end: null, ...over };
}

export function eventWrite(cohortId: string, atMs: number, kind: string, fields: { stepId?: string; peerId?: string; detail?: string } = {}): Write {
  return { table: 'event', row: { cohortId, atMs, kind, stepId: fields.stepId ?? null, peerId: fields.peerId ?? null, detail: fields.detail ?? null } };
}

/**
 * Every row of one cohort: for a resolved cohort each step succeeded on the
 * first peer (one lease each) and peers left; for an open
 * one the first step is leased and the rest pending. Events: created, joins,
 * and one per lease.
 */
export function seedCohortWrites(seed: SeedCohort): Write[] {
  const cohort = cohortRecord(seed);
  const id = seed.id;
  const t0 = seed.createdAtMs;
  const open = cohort.status === 'open';
  const peers = seed.peers ?? ['p1'];
  const builder = peers[0]!;
  const writes: Write[] = [{ table: 'cohort', row: cohort, created: true }, eventWrite(id, t0, 'cohort.created')];
  peers.forEach((p, i) => {
    writes.push({ table: 'peer', row: peerRecord(id, p, t0 + i, { status: open ? 'connected' : 'left' }, { name: seed.pipelineName, type: seed.pipelineType, repo: seed.repo }) });
    writes.push(eventWrite(id, t0 + i, 'peer.joined', { peerId: p }));
  });
  cohort.schema.steps.forEach((def, i) => {
    const leaseId = `${id}-l${i + 1}`;
    const at = t0 + 10 + i * 10;
    if (!open) {
      const ended = at + 5;
      writes.push({ table: 'step', row: stepRecord(id, def.id, { status: 'succeeded', attempts: 1, builtBy: builder, durationMs: 5, resolvedAtMs: ended }) });
      writes.push({ table: 'lease', row: leaseRecord(id, def.id, leaseId, builder, at, { endedAtMs: ended, end: { kind: 'succeeded' } }) });
      writes.push(eventWrite(id, at, 'step.succeeded', { stepId: def.id, peerId: builder }));
    } else if (i === 0) {
      writes.push({ table: 'step', row: stepRecord(id, def.id, { status: 'leased', attempts: 1 }) });
      writes.push({ table: 'lease', row: leaseRecord(id, def.id, leaseId, builder, at) });
      writes.push(eventWrite(id, at, 'step.leased', { stepId: def.id, peerId: builder }));
    } else {
      writes.push({ table: 'step', row: stepRecord(id, def.id) });
    }
  });
  return writes;
}
