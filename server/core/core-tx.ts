import type { Cohort } from './cohort.js';
import type { AdminResult, CoreOutput } from './core-types.js';
import type { ConnId, CoreStat, Effect, Refusal } from './effects.js';
import { Journal } from './journal.js';
import type { CohortRecord, EventRecord, LeaseRecord, PeerRecord, StepRecord, Write } from './records.js';

/**
 * One input in progress. Every state change goes through `journal` (undone
 * if the input throws). Row writes are collected as dirty sets (a row changed
 * twice in one call is written once, in its final state) and handed out as
 * frozen copies in dependency order; effects keep their order. The cohorts
 * and peers an input touched are what the invariant check looks at.
 */
export class CoreTx {
  readonly journal = new Journal();
  private readonly cohortRows = new Set<CohortRecord>();
  private readonly stepRows = new Set<StepRecord>();
  private readonly peerRows = new Set<PeerRecord>();
  private readonly leaseRows = new Set<LeaseRecord>();
  private readonly appended: Write[] = [];
  private readonly effects: Effect[] = [];
  /** Cohorts whose dispatch and completion must be re-evaluated before the call ends. */
  readonly dirty = new Set<Cohort>();
  /** Cohorts whose rows (cohort, steps, leases) changed. */
  readonly touchedCohorts = new Set<string>();
  /** Peers whose registration or work state changed. */
  readonly touchedPeers = new Set<string>();
  /** Cohorts this input created (the invariant check looks at all of a new cohort; the store inserts its row whole). */
  readonly createdCohorts = new Set<string>();
  admin: AdminResult | null = null;

  constructor(readonly now: number) {}

  cohort(row: CohortRecord): void {
    this.cohortRows.add(row);
    this.touchedCohorts.add(row.cohortId);
  }
  step(row: StepRecord): void {
    this.stepRows.add(row);
    this.touchedCohorts.add(row.cohortId);
  }
  peer(row: PeerRecord): void {
    this.peerRows.add(row);
    this.touchedPeers.add(row.peerId);
  }
  lease(row: LeaseRecord): void {
    this.leaseRows.add(row);
    this.touchedCohorts.add(row.cohortId);
    this.touchedPeers.add(row.peerId);
  }
  append(write: Write): void {
    this.appended.push(write);
  }
  event(cohortId: string, kind: string, fields: { stepId?: string | null; peerId?: string | null; detail?: string | null; leaseId?: string } = {}): void {
    const row: EventRecord = {
      cohortId,
      atMs: this.now,
      kind,
      stepId: fields.stepId ?? null,
      peerId: fields.peerId ?? null,
      detail: fields.detail ?? null,
      ...(fields.leaseId === undefined ? {} : { leaseId: fields.leaseId }),
    };
    this.appended.push({ table: 'event', row });
  }

  /** A protocol-neutral effect, in order. */
  emit(effect: Effect): void {
    this.effects.push(effect);
  }
  /** The core did not act on this connection's input, for `refusal` (one error code each). */
  refuse(connId: ConnId, refusal: Refusal): void {
    this.effects.push({ kind: 'refuse', connId, refusal });
  }
  stat(stat: CoreStat, value = 1): void {
    this.effects.push({ kind: 'stat', stat, value });
  }
  notice(message: string, fields: Record<string, string | number | boolean | null>): void {
    this.effects.push({ kind: 'notice', message, fields });
  }

  /** The step rows this input wrote (the invariant check compares their rising fields with before). */
  get writtenSteps(): ReadonlySet<StepRecord> {
    return this.stepRows;
  }
  /** The lease rows this input wrote. */
  get writtenLeases(): ReadonlySet<LeaseRecord> {
    return this.leaseRows;
  }

  /**
   * The input's result: frozen snapshots of the changed rows (never the live objects), then its
   * effects. Copies are made with `Object.assign({}, row)`, not `{ ...row }`: on Node 20 (V8 11.3)
   * freezing a spread clone makes V8 move it to the old generation, so every write of every input
   * was garbage that only a major GC could free (bench/day-bench.ts; docs/performance.md,
   * "A day in service"). Appended writes are built for this input alone, so they are frozen in place.
   */
  output(): CoreOutput {
    const writes: Write[] = [];
    for (const row of this.cohortRows) {
      const write = this.createdCohorts.has(row.cohortId) ? { table: 'cohort' as const, row: snapshotOf(row), created: true as const } : { table: 'cohort' as const, row: snapshotOf(row) };
      writes.push(Object.freeze(write));
    }
    for (const row of this.stepRows) writes.push(Object.freeze({ table: 'step' as const, row: snapshotOf(row) }));
    for (const row of this.peerRows) writes.push(Object.freeze({ table: 'peer' as const, row: snapshotOf(row) }));
    for (const row of this.leaseRows) writes.push(Object.freeze({ table: 'lease' as const, row: snapshotOf(row) }));
    for (const w of this.appended) writes.push(Object.freeze(w));
    return { writes, effects: this.effects, admin: this.admin, fault: null };
  }
}

/** A frozen shallow copy of a live record (records change by replacing fields, so this is a snapshot). */
function snapshotOf<T extends object>(row: T): Readonly<T> {
  return Object.freeze(Object.assign({}, row));
}
