import { errorCodes } from '../../shared/error-codes.js';
import type { ServerMessage } from '../../shared/protocol.js';
import type { Cohort } from './cohort.js';
import type { AdminResult, ConnId, CoreOutput, CoreStat, Effect, ErrorEffectInput } from './core-types.js';
import type { CohortRecord, EventRecord, LeaseRecord, PeerRecord, StepRecord, Write } from './records.js';

/**
 * What one `handle()` call produces. Row writes are collected as dirty sets
 * (a row changed twice in one call is written once, in its final state) and
 * flushed in dependency order; effects keep their order.
 */
export class CoreTx {
  private readonly cohortRows = new Set<CohortRecord>();
  private readonly stepRows = new Set<StepRecord>();
  private readonly peerRows = new Set<PeerRecord>();
  private readonly leaseRows = new Set<LeaseRecord>();
  private readonly appended: Write[] = [];
  private readonly effects: Effect[] = [];
  /** Cohorts whose dispatch and completion must be re-evaluated before the call ends. */
  readonly dirty = new Set<Cohort>();
  admin: AdminResult | null = null;

  constructor(readonly now: number) {}

  cohort(row: CohortRecord): void {
    this.cohortRows.add(row);
  }
  step(row: StepRecord): void {
    this.stepRows.add(row);
  }
  peer(row: PeerRecord): void {
    this.peerRows.add(row);
  }
  lease(row: LeaseRecord): void {
    this.leaseRows.add(row);
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

  output(): CoreOutput {
    const writes: Write[] = [];
    for (const row of this.cohortRows) writes.push({ table: 'cohort', row });
    for (const row of this.stepRows) writes.push({ table: 'step', row });
    for (const row of this.peerRows) writes.push({ table: 'peer', row });
    for (const row of this.leaseRows) writes.push({ table: 'lease', row });
    writes.push(...this.appended);
    return { writes, effects: this.effects, admin: this.admin };
  }
}
