import type { FastifyBaseLogger } from 'fastify';
import { refusalCode, type Refusal } from '../core/effects.js';
import type { CohortRecord, EventRecord, LeaseRecord, StepRecord, Write } from '../core/records.js';

/**
 * The authority's story in its log: one line per lifecycle event the core
 * committed (peer joined / resumed / disconnected / left / gone, cohort
 * created / complete / cancelled / abandoned, step assigned / succeeded /
 * failed / poisoned / reused, backup started, lease lost / expired /
 * aborted), each with cohortId, repo, and peerId / stepId where there is
 * one. Failures are warnings. Refused peers are told by {@link refusalLine}. Derived from the committed event rows, so the
 * log never tells of something the database does not hold.
 */

export interface LifecycleLine {
  readonly level: 'info' | 'warn';
  readonly msg: string;
  readonly fields: Record<string, string | number | null>;
}

/** The log line for one committed event, given the rows committed with it. */
export function lifecycleLine(event: EventRecord, batch: BatchRows, repo: string | null): LifecycleLine {
  const fields: Record<string, string | number | null> = { cohortId: event.cohortId, repo };
  if (event.peerId !== null) fields.peerId = event.peerId;
  if (event.stepId !== null) fields.stepId = event.stepId;
  if (event.detail !== null) fields.detail = event.detail;
  const info = (msg: string): LifecycleLine => ({ level: 'info', msg, fields });
  const warn = (msg: string): LifecycleLine => ({ level: 'warn', msg, fields });
  switch (event.kind) {
    case 'cohort.created':
      return info('cohort created');
    case 'cohort.complete': {
      const outcome = batch.cohorts.get(event.cohortId)?.outcome;
      fields.outcome = outcome?.kind ?? null;
      return outcome?.kind === 'failed' ? warn('cohort complete') : info('cohort complete');
    }
    case 'cohort.cancelled': {
      const outcome = batch.cohorts.get(event.cohortId)?.outcome;
      return outcome?.kind === 'cancelled' && outcome.by === 'abandoned' ? warn('cohort abandoned') : info('cohort cancelled');
    }
    case 'peer.joined':
      return info('peer joined');
    case 'peer.resumed':
      return info('peer resumed');
    case 'peer.disconnected':
      return info('peer disconnected');
    case 'peer.left':
      return info('peer left');
    case 'peer.gone':
      return warn('peer gone');
    case 'step.leased': {
      const lease = event.peerId === null || event.stepId === null ? undefined : batch.liveLeases.get(`${event.stepId}\u0000${event.peerId}`);
      if (lease) {
        fields.leaseId = lease.leaseId;
        fields.attempt = lease.attempt;
      }
      return info(lease?.backup ? 'backup started' : 'step assigned');
    }
    case 'step.succeeded':
      return info('step succeeded');
    case 'step.memo':
      return info('step reused from memo');
    case 'step.attempt-failed':
      return warn('step attempt failed');
    case 'step.retry':
      return info('step retrying');
    case 'step.failed': {
      const step = event.stepId === null ? undefined : batch.steps.get(`${event.cohortId}\u0000${event.stepId}`);
      return warn(step?.failCause?.kind === 'lost-too-often' ? 'step poisoned' : 'step failed');
    }
    case 'step.admin-retry':
      return info('step retried by admin');
    case 'step.late-completion':
      return info('late completion ignored');
    case 'lease.lost': {
      const ended = event.stepId === null || event.peerId === null ? undefined : batch.endedLeases.get(`${event.stepId}\u0000${event.peerId}`);
      return warn(ended?.end?.kind === 'lost' && ended.end.why === 'grace-expired' ? 'lease expired' : 'lease lost');
    }
    case 'lease.aborted':
      return info('lease aborted');
    case 'lease.timed-out':
      return warn('lease timed out');
    case 'schema.digest-differs':
      return warn('schema digest differs');
    case 'step.unpublished':
      return warn('step not published');
    case 'step.unshared':
      return info('step unshared');
    case 'peer.released':
      return info('peer released');
    default:
      return info(event.kind);
  }
}

/** The rows of one committed batch that the lines refer to. */
export interface BatchRows {
  readonly cohorts: ReadonlyMap<string, CohortRecord>;
  /** By `${cohortId}\0${stepId}`. */
  readonly steps: ReadonlyMap<string, StepRecord>;
  /** Live leases by `${stepId}\0${peerId}`. */
  readonly liveLeases: ReadonlyMap<string, LeaseRecord>;
  /** Ended leases by `${stepId}\0${peerId}`. */
  readonly endedLeases: ReadonlyMap<string, LeaseRecord>;
}

function batchRows(writes: readonly Write[]): BatchRows {
  const cohorts = new Map<string, CohortRecord>();
  const steps = new Map<string, StepRecord>();
  const liveLeases = new Map<string, LeaseRecord>();
  const endedLeases = new Map<string, LeaseRecord>();
  for (const w of writes) {
    if (w.table === 'cohort') cohorts.set(w.row.cohortId, w.row);
    else if (w.table === 'step') steps.set(`${w.row.cohortId}\u0000${w.row.stepId}`, w.row);
    else if (w.table === 'lease') (w.row.end === null ? liveLeases : endedLeases).set(`${w.row.stepId}\u0000${w.row.peerId}`, w.row);
  }
  return { cohorts, steps, liveLeases, endedLeases };
}

const levelRanks: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** Whether the logger writes lines of `level` (pino's numbering; a level it does not know counts as enabled). */
function levelEnabled(log: FastifyBaseLogger, level: 'info' | 'warn'): boolean {
  const current = levelRanks[log.level];
  return current === undefined || current <= levelRanks[level]!;
}

/** The event kinds that may be logged as warnings (lifecycleLine); every other kind is always an info line. */
const warningKinds: ReadonlySet<string> = new Set([
  'cohort.complete',
  'cohort.cancelled',
  'peer.gone',
  'step.attempt-failed',
  'step.failed',
  'lease.lost',
  'lease.timed-out',
  'schema.digest-differs',
  'step.unpublished',
]);

/** Remembered repos, so lines of cohorts whose row is not in the batch still name theirs. */
const maxRemembered = 10_000;

/** Logs every lifecycle event of each committed batch; `repoOf` answers for cohorts it has not seen. */
export class LifecycleLog {
  private readonly repos = new Map<string, string>();

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly repoOf: (cohortId: string) => string | null,
  ) {}

  observe(writes: readonly Write[]): void {
    // Lines the logger would drop are not made (the benchmark runs at --log-level warn; every event is an info or a warning).
    const info = levelEnabled(this.log, 'info');
    if (!info && !levelEnabled(this.log, 'warn')) return;
    let rows: BatchRows | null = null;
    for (const w of writes) {
      if (w.table !== 'event') continue;
      if (!info && !warningKinds.has(w.row.kind)) continue;
      rows ??= batchRows(writes);
      for (const c of rows.cohorts.values()) this.remember(c.cohortId, c.repo);
      const line = lifecycleLine(w.row, rows, this.repo(w.row.cohortId));
      this.log[line.level](line.fields, line.msg);
    }
  }

  private repo(cohortId: string): string | null {
    const known = this.repos.get(cohortId);
    if (known !== undefined) return known;
    const repo = this.repoOf(cohortId);
    if (repo !== null) this.remember(cohortId, repo);
    return repo;
  }

  private remember(cohortId: string, repo: string): void {
    if (this.repos.has(cohortId)) return;
    if (this.repos.size >= maxRemembered) this.repos.delete(this.repos.keys().next().value!);
    this.repos.set(cohortId, repo);
  }
}

/**
 * The `peer refused` line for a refusal of a peer as a whole (at its hello, or a frame on a
 * connection it never joined on), or null for refusals of single frames (stale leases and the
 * like, told by the lease lines; malformed frames, counted where the transport refuses them).
 */
export function refusalLine(connId: number, refusal: Refusal): LifecycleLine | null {
  const fields: Record<string, string | number | null> = { connId, code: refusalCode(refusal), refusal: refusal.kind };
  switch (refusal.kind) {
    case 'duplicate-peer':
      return { level: 'warn', msg: 'peer refused', fields: { ...fields, peerId: refusal.peerId, heldBy: refusal.heldBy } };
    case 'schema-mismatch':
      return { level: 'warn', msg: 'peer refused', fields: { ...fields, cohortId: refusal.cohortId, schemaId: refusal.schemaId } };
    case 'quota-exceeded':
      return { level: 'warn', msg: 'peer refused', fields: { ...fields, repo: refusal.repo, quota: refusal.quota, limit: refusal.limit } };
    case 'already-joined':
      return { level: 'warn', msg: 'peer refused', fields: { ...fields, peerId: refusal.peerId } };
    case 'not-joined':
    case 'shutting-down':
      return { level: 'warn', msg: 'peer refused', fields };
    default:
      return null;
  }
}
