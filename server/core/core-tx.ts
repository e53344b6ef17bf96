import { errorCodes } from '../../shared/error-codes.js';
import type { ServerMessage } from '../../shared/protocol.js';
import type { Cohort } from './cohort.js';
import type { AdminResult, ConnId, CoreOutput, CoreStat, Effect, ErrorEffectInput } from './core-types.js';
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
  event(cohortId: string, kind: string, fields: { stepId?: string | null; peerId?: string | null; detail?: string | null } = {}): void {
    const row: EventRecord = {
      cohortId,
      atMs: this.now,
      kind,
      stepId: fields.stepId ?? null,
      peerId: fields.peerId ?? null,
      detail: fields.detail ?? null,
    };
    this.appended.push({ table: 'event', row });
  }

  send(connId: ConnId | null, message: ServerMessage): void {
    if (connId !== null) this.effects.push({ kind: 'send', connId, message });
  }
  close(connId: ConnId, code: number, reason: string): void {
    this.effects.push({ kind: 'close', connId, code, reason });
  }
  /** An error frame, followed by a close when the registry says the code ends the connection. */
  error(connId: ConnId, error: ErrorEffectInput): void {
    const info = errorCodes[error.code];
    this.send(connId, {
      type: 'error',
      code: error.code,
      message: error.message,
      retryable: info.retryable,
      ...(error.stepId ? { stepId: error.stepId } : {}),
      ...(error.leaseId ? { leaseId: error.leaseId } : {}),
    });
    if (info.closeCode !== null) this.close(connId, info.closeCode, error.code);
  }
  stat(stat: CoreStat, value = 1): void {
    this.effects.push({ kind: 'stat', stat, value });
  }
  notice(message: string, fields: Record<string, string | number | boolean | null>): void {
    this.effects.push({ kind: 'notice', message, fields });
  }

  /** The input's result: frozen snapshots of the changed rows (never the live objects), then its effects. */
  output(): CoreOutput {
    const writes: Write[] = [];
    for (const row of this.cohortRows) writes.push(Object.freeze({ table: 'cohort' as const, row: Object.freeze({ ...row }) }));
    for (const row of this.stepRows) writes.push(Object.freeze({ table: 'step' as const, row: Object.freeze({ ...row }) }));
    for (const row of this.peerRows) writes.push(Object.freeze({ table: 'peer' as const, row: Object.freeze({ ...row }) }));
    for (const row of this.leaseRows) writes.push(Object.freeze({ table: 'lease' as const, row: Object.freeze({ ...row }) }));
    for (const w of this.appended) writes.push(Object.freeze({ ...w }));
    return { writes, effects: this.effects, admin: this.admin, fault: null };
  }
}
