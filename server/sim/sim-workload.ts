import { defaultCoreConfig } from '../core/core-types.js';
import type { Registration } from '../core/records.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import type { SimPeerSpec, SimWorkload } from './sim-types.js';

/** Builders for the common simulated set-ups (the bench and `taskshard plan` use them). */

/** The repository every simulated peer reports unless told otherwise. */
export const simRepo = 'https://example.com/sim/monorepo.git';

export function simRegistration(over: Partial<Registration> = {}): Registration {
  return {
    repo: simRepo,
    baseRef: 'main',
    baseSha: null,
    patchsets: ['refs/changes/01/1'],
    changeRef: null,
    pipelineName: 'check',
    pipelineType: 'independent',
    isolated: false,
    cacheId: 'sim-cache',
    ...over,
  };
}

/**
 * Each step's duration in ms: the override when there is one (seconds), else
 * the schema's `estimateSec`, else the core's default estimate.
 */
export function stepDurationsMs(schema: SchemaDef, overridesSec: ReadonlyMap<string, number> = new Map(), defaultEstimateMs = defaultCoreConfig.defaultEstimateMs): Map<string, number> {
  const out = new Map<string, number>();
  for (const step of schema.steps) {
    const sec = overridesSec.get(step.id) ?? step.estimateSec;
    out.set(step.id, sec === undefined ? defaultEstimateMs : Math.round(sec * 1000));
  }
  return out;
}

/** Where a step's duration came from, for reports. */
export function durationSource(schema: SchemaDef, stepId: string, overridesSec: ReadonlyMap<string, number>): 'durations-file' | 'estimateSec' | 'default' {
  if (overridesSec.has(stepId)) return 'durations-file';
  return schema.steps.find((s) => s.id === stepId)?.estimateSec === undefined ? 'default' : 'estimateSec';
}

/** Peer ids p1..pK, zero-padded so they sort in order. */
export function peerIds(count: number, prefix = 'p'): string[] {
  const width = String(count).length;
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`);
}

export interface SingleCohortOptions {
  readonly name: string;
  readonly schema: SchemaDef;
  readonly peers: number;
  readonly durationsMs: ReadonlyMap<string, number>;
  readonly seed?: number;
  readonly jitter?: number;
  readonly seedDurations?: boolean;
}

/** K peers with the same source state, all arriving at 0: one cohort. */
export function singleCohortWorkload(options: SingleCohortOptions): SimWorkload {
  const peers: SimPeerSpec[] = peerIds(options.peers).map((peerId) => ({ peerId, arrivalMs: 0, registration: simRegistration() }));
  return {
    name: options.name,
    schema: options.schema,
    durationsMs: options.durationsMs,
    jitter: options.jitter ?? 0,
    seed: options.seed ?? 1,
    peers,
    seedDurations: options.seedDurations ?? false,
  };
}
