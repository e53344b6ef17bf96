import { performance } from 'node:perf_hooks';
import type { CohortRecord, Registration, StepRecord, Write } from '../server/core/records.js';
import { SqliteStore } from '../server/store/sqlite-store.js';
import type { WireSchema } from '../shared/protocol.js';
import { schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';

/** The day benchmark's schema: `steps` independent steps. */
export function schemaOf(steps: number): SchemaDef {
  return { id: 'day', universe: '//...', steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i + 1}`, target: `//s${i + 1}/...`, needs: [] })) };
}

export function wireSchemaOf(steps: number): WireSchema {
  const schema = schemaOf(steps);
  return { id: schema.id, digest: schemaDigest(schema), universe: schema.universe, steps: schema.steps.map((s) => ({ id: s.id, target: s.target, needs: [...s.needs] })) };
}

/**
 * Fills a new database file with `cohorts` finished cohorts of history, each
 * as the authority writes one of 3 peers × 4 steps (cohort, steps, leases,
 * success rows, peers that left, 16 events), resolved two days ago: inside
 * the default `--history-days`, outside `--retention`, so a start-up must
 * skip them. Written through the store itself, 1,000 cohorts per batch.
 * Returns the seconds it took.
 */
export async function fillHistory(path: string, cohorts: number): Promise<number> {
  const t0 = performance.now();
  const store = new SqliteStore(path, { role: 'bench history fill' });
  try {
    const schema = schemaOf(4);
    const digest = schemaDigest(schema);
    const base = Date.now() - 2 * 86_400_000;
    let batch: Write[] = [];
    for (let i = 0; i < cohorts; i++) {
      const id = `hist-${i}`;
      const at = base + i;
      const sha = (i + 1).toString(16).padStart(40, 'f');
      const cohort: CohortRecord = {
        cohortId: id, repo: 'https://example.com/bench/monorepo.git', baseRef: 'main', cacheId: 'bench-cache', pipelineType: 'independent', isolated: false,
        schema, digest, baseSha: sha, patchsets: [], cohortKey: null, status: 'complete', createdAtMs: at - 5000, resolvedAtMs: at, lastActivityMs: at, secondsSaved: 15, outcome: { kind: 'succeeded' },
      };
      batch.push({ table: 'cohort', row: cohort, created: true });
      const event = (atMs: number, kind: string, stepId: string | null, peerId: string | null): Write => ({ table: 'event', row: { cohortId: id, atMs, kind, stepId, peerId, detail: null } });
      batch.push(event(at - 5000, 'cohort.created', null, null));
      for (let p = 0; p < 3; p++) {
        const peerId = `hist-${i}-${p}`;
        const registration: Registration = { repo: cohort.repo, baseRef: 'main', baseSha: sha, patchsets: [], changeRef: null, pipelineName: 'check', pipelineType: 'independent', isolated: false, cacheId: 'bench-cache' };
        batch.push({ table: 'peer', row: { peerId, cohortId: id, tokenHash: 'x'.repeat(64), registration, resumable: true, status: 'left', joinedAtMs: at - 5000 + p, graceEndsAtMs: null } });
        batch.push(event(at - 5000 + p, 'peer.joined', null, peerId));
        batch.push(event(at, 'peer.left', null, peerId));
      }
      schema.steps.forEach((def, s) => {
        const peerId = `hist-${i}-${s % 3}`;
        const leaseId = `hist-${i}-l${s}`;
        const step: StepRecord = {
          cohortId: id, stepId: def.id, status: 'succeeded', attempts: 1, failures: 0, lostLeases: 0, failedOn: [], builtBy: peerId, fromMemo: false,
          durationMs: 1000, failCause: null, failPeerId: null, failExitCode: null, failLogTail: null, resolvedAtMs: at - 1000 + s,
        };
        batch.push({ table: 'step', row: step });
        batch.push({ table: 'lease', row: { leaseId, cohortId: id, stepId: def.id, peerId, attempt: 1, backup: false, startedAtMs: at - 4000, endedAtMs: at - 1000 + s, end: { kind: 'succeeded' } } });
        batch.push(event(at - 4000, 'step.leased', def.id, peerId));
        batch.push(event(at - 1000 + s, 'step.succeeded', def.id, peerId));
      });
      batch.push(event(at, 'cohort.complete', null, null));
      if (batch.length >= 20_000) {
        store.scheduler.apply(batch);
        batch = [];
        await new Promise((r) => setImmediate(r));
      }
    }
    store.scheduler.apply(batch);
  } finally {
    store.close();
  }
  return (performance.now() - t0) / 1000;
}
