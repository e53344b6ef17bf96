import { Histogram, type Registry } from 'prom-client';
import { leaseOutcomeOf } from '../core/causes.js';
import type { Write } from '../core/records.js';

/**
 * Metrics derived from what the authority commits (the same batches the
 * dashboard's live updates come from), so they count only what really
 * happened:
 *
 * - `taskshard_step_duration_seconds{outcome}`: each lease, start to end,
 *   by how it ended (succeeded, failed, lost, aborted).
 * - `taskshard_peer_wait_seconds`: each time a peer went without work in an
 *   open cohort, from joining or finishing its last lease to its next lease
 *   (0 when work was ready), or to the cohort resolving or the peer leaving.
 * - `taskshard_time_to_universe_seconds`: per member connected when its
 *   cohort succeeded, from joining to completion (when it can start its
 *   universe build).
 *
 * State is per open cohort and forgotten when it resolves; after a restart
 * it starts empty (metrics count from process start).
 */

interface CohortTrack {
  /** Members in the cohort (connected or in grace): join time. */
  readonly members: Map<string, number>;
  /** Peers without a lease since this time. */
  readonly idleSince: Map<string, number>;
}

export const stepDurationBucketsSec = [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600];
export const peerWaitBucketsSec = [0, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800];
export const timeToUniverseBucketsSec = [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

export class WriteMetrics {
  readonly stepDuration: Histogram<'outcome'>;
  readonly peerWait: Histogram;
  readonly timeToUniverse: Histogram;
  private readonly cohorts = new Map<string, CohortTrack>();

  constructor(registry: Registry) {
    this.stepDuration = new Histogram({
      name: 'taskshard_step_duration_seconds',
      help: 'Lease durations (start to end), by how the lease ended.',
      labelNames: ['outcome'],
      buckets: stepDurationBucketsSec,
      registers: [registry],
    });
    this.peerWait = new Histogram({
      name: 'taskshard_peer_wait_seconds',
      help: 'Time a peer in an open cohort held no lease before its next one (or until the cohort resolved or it left).',
      buckets: peerWaitBucketsSec,
      registers: [registry],
    });
    this.timeToUniverse = new Histogram({
      name: 'taskshard_time_to_universe_seconds',
      help: 'Per member of a succeeded cohort: joining to completion, when its universe build can start.',
      buckets: timeToUniverseBucketsSec,
      registers: [registry],
    });
  }

  private track(cohortId: string): CohortTrack {
    let t = this.cohorts.get(cohortId);
    if (!t) this.cohorts.set(cohortId, (t = { members: new Map(), idleSince: new Map() }));
    return t;
  }

  private endWait(t: CohortTrack, peerId: string, atMs: number): void {
    const since = t.idleSince.get(peerId);
    if (since === undefined) return;
    t.idleSince.delete(peerId);
    this.peerWait.observe(Math.max(0, atMs - since) / 1000);
  }

  /** Cohorts being tracked (for tests: state must not grow with history). */
  get trackedCohorts(): number {
    return this.cohorts.size;
  }

  /** One committed batch, at `nowMs`. */
  observe(writes: readonly Write[], nowMs: number): void {
    for (const w of writes) {
      if (w.table === 'peer') {
        const t = this.track(w.row.cohortId);
        const present = w.row.status === 'connected' || w.row.status === 'disconnected';
        if (present && !t.members.has(w.row.peerId)) {
          t.members.set(w.row.peerId, w.row.joinedAtMs);
          t.idleSince.set(w.row.peerId, nowMs);
        } else if (!present) {
          this.endWait(t, w.row.peerId, nowMs);
          t.members.delete(w.row.peerId);
          // Nobody left to measure (and a cohort without members is resolved at once): forget it.
          if (t.members.size === 0) this.cohorts.delete(w.row.cohortId);
        }
      } else if (w.table === 'lease') {
        const lease = w.row;
        const t = this.track(lease.cohortId);
        if (lease.end === null) {
          this.endWait(t, lease.peerId, lease.startedAtMs);
        } else {
          const endedAtMs = lease.endedAtMs ?? nowMs;
          const outcome = leaseOutcomeOf(lease.end);
          this.stepDuration.observe({ outcome }, Math.max(0, endedAtMs - lease.startedAtMs) / 1000);
          if (t.members.has(lease.peerId)) t.idleSince.set(lease.peerId, endedAtMs);
        }
      }
    }
    // Cohorts last: a batch that resolves a cohort also carries its final leases.
    for (const w of writes) {
      if (w.table !== 'cohort' || w.row.status === 'open') continue;
      const t = this.cohorts.get(w.row.cohortId);
      if (!t) continue;
      const resolvedAtMs = w.row.resolvedAtMs ?? nowMs;
      for (const peerId of [...t.idleSince.keys()]) this.endWait(t, peerId, resolvedAtMs);
      if (w.row.outcome?.kind === 'succeeded') {
        for (const joinedAtMs of t.members.values()) this.timeToUniverse.observe(Math.max(0, resolvedAtMs - joinedAtMs) / 1000);
      }
      this.cohorts.delete(w.row.cohortId);
    }
  }
}
