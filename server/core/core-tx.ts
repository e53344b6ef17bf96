import type { Cohort } from './cohort.js';
import type { AdminResult, CoreOutput } from './core-types.js';
import type { ConnId, CoreStat, Effect, Refusal } from './effects.js';
import { InputSet, type ReadonlyInputSet } from './input-set.js';
import { Journal } from './journal.js';
import { cohortSnapshot, leaseSnapshot, peerSnapshot, stepSnapshot } from './row-snapshots.js';
import type { CohortRecord, EventRecord, LeaseRecord, PeerRecord, StepRecord, Write } from './records.js';

/**
 * One input in progress. Every state change goes through `journal` (undone
 * if the input throws). Row writes are collected as dirty sets (a row changed
 * twice in one call is written once, in its final state) and handed out as
 * frozen copies in dependency order; effects keep their order. The cohorts
 * and peers an input touched are what the invariant check looks at.
 *
 * The scheduler keeps one and `begin`s it for each input (issue 17): its sets
 * and the journal's log are emptied and reused, not made anew per input.
 */
export class CoreTx {
  readonly journal = new Journal();
  private readonly cohortRows = new InputSet<CohortRecord>();
  private readonly stepRows = new InputSet<StepRecord>();
  private readonly peerRows = new InputSet<PeerRecord>();
  private readonly leaseRows = new InputSet<LeaseRecord>();
  private appended: Write[] = [];
  private effects: Effect[] = [];
  /** Cohorts whose dispatch and completion must be re-evaluated before the call ends. */
  readonly dirty = new InputSet<Cohort>();
  /** Cohorts whose rows (cohort, steps, leases) changed. */
  readonly touchedCohorts = new InputSet<string>();
  /** Peers whose registration or work state changed. */
  readonly touchedPeers = new InputSet<string>();
  /** The invariant check's list of a cohort's steps to look at (reused; invariants.ts). */
  readonly checkedSteps = new InputSet<StepRecord>();
  /** Cohorts this input created (the invariant check looks at all of a new cohort; the store inserts its row whole). */
  readonly createdCohorts = new InputSet<string>();
  admin: AdminResult | null = null;
  private nowMs: number;

  constructor(now: number) {
    this.nowMs = now;
  }

  /** The input's time. */
  get now(): number {
    return this.nowMs;
  }

  /** Starts the next input at `now`: everything the last one collected is emptied (its output was handed out whole). */
  begin(now: number): void {
    this.nowMs = now;
    this.cohortRows.clear();
    this.stepRows.clear();
    this.peerRows.clear();
    this.leaseRows.clear();
    this.dirty.clear();
    this.touchedCohorts.clear();
    this.touchedPeers.clear();
    this.createdCohorts.clear();
    this.checkedSteps.clear();
    if (this.appended.length > 0) this.appended = [];
    if (this.effects.length > 0) this.effects = [];
    this.admin = null;
  }

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
    const stepId = fields.stepId ?? null;
    const peerId = fields.peerId ?? null;
    const detail = fields.detail ?? null;
    // Two literals rather than a spread of an optional part: one allocation, a fixed shape each.
    const row: EventRecord =
      fields.leaseId === undefined
        ? { cohortId, atMs: this.nowMs, kind, stepId, peerId, detail }
        : { cohortId, atMs: this.nowMs, kind, stepId, peerId, detail, leaseId: fields.leaseId };
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
  get writtenSteps(): ReadonlyInputSet<StepRecord> {
    return this.stepRows;
  }
  /** The lease rows this input wrote. */
  get writtenLeases(): ReadonlyInputSet<LeaseRecord> {
    return this.leaseRows;
  }

  /**
   * The input's result: frozen snapshots of the changed rows (never the live objects), then its
   * effects. Copies are object literals naming every field (row-snapshots.ts), not `{ ...row }`:
   * on Node 20 (V8 11.3) freezing a spread clone makes V8 move it to the old generation, so every
   * write of every input was garbage that only a major GC could free (bench/day-bench.ts;
   * docs/performance.md, "A day in service"). Appended writes are built for this input alone, so
   * they are frozen in place.
   */
  output(): CoreOutput {
    const writes: Write[] = [];
    const cohorts = this.cohortRows;
    for (let i = 0; i < cohorts.size; i++) {
      const row = cohorts.at(i);
      const write = this.createdCohorts.has(row.cohortId) ? { table: 'cohort' as const, row: cohortSnapshot(row), created: true as const } : { table: 'cohort' as const, row: cohortSnapshot(row) };
      writes.push(Object.freeze(write));
    }
    for (let i = 0; i < this.stepRows.size; i++) writes.push(Object.freeze({ table: 'step' as const, row: stepSnapshot(this.stepRows.at(i)) }));
    for (let i = 0; i < this.peerRows.size; i++) writes.push(Object.freeze({ table: 'peer' as const, row: peerSnapshot(this.peerRows.at(i)) }));
    for (let i = 0; i < this.leaseRows.size; i++) writes.push(Object.freeze({ table: 'lease' as const, row: leaseSnapshot(this.leaseRows.at(i)) }));
    for (const w of this.appended) writes.push(Object.freeze(w));
    return { writes, effects: this.effects.length > 0 ? this.effects : noEffects, admin: this.admin, fault: null };
  }
}

const noEffects: readonly Effect[] = Object.freeze([]);

