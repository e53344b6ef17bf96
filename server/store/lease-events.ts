import type { LeaseEnd } from '../core/causes.js';
import { describeLoss } from '../core/causes.js';
import type { EventView } from '../core/read-model.js';
import { pendingStepRecord, type LeaseRecord, type Snapshot, type StepRecord, type Write } from '../core/records.js';

/**
 * Rows that only restate other rows are not written (issue 17). Both stores share this:
 *
 * - A grant writes the lease row and no step row: a step whose stored status is `pending` but
 *   that has a live lease is `leased`, and its `attempts` is at least its highest lease attempt.
 *   {@link foldLeasesIntoSteps} restores that on load; the read models do the same in SQL.
 * - An event the core marks with a `leaseId` (records.ts `EventRecord`) restates that lease's
 *   grant (`step.leased`) or end (`step.succeeded`, `step.attempt-failed`, `lease.lost`,
 *   `lease.aborted`). It gets no event row: its place in the timeline (a number from the same
 *   sequence as event ids) goes on the lease row (`granted_seq`, `ended_seq`), and
 *   {@link leaseEventsOf} rebuilds the event, text included, when a timeline is read.
 *
 * Leases written before this (both seq columns null) keep their event rows and derive nothing.
 */

/** How a lease moment's event reads: its kind and detail, from the lease row (and its step's duration). */
const grantKind = 'step.leased';
const endKinds: Readonly<Record<LeaseEnd['kind'], string | null>> = {
  succeeded: 'step.succeeded',
  failed: 'step.attempt-failed',
  lost: 'lease.lost',
  aborted: 'lease.aborted',
  unrecorded: null,
};

/** The slots (0-based, in the batch's event order) a lease's folded events take. */
export interface LeaseSlots {
  granted: number | null;
  ended: number | null;
}

/** Where each event of a batch goes: its own row at a slot, or folded into its lease's row. */
export interface EventPlan {
  /** Events of the batch in order (folded ones included): the batch takes this many sequence numbers. */
  readonly slots: number;
  /** The slot of each event write that gets a row of its own. */
  readonly rowSlots: Map<Write, number>;
  /** Per lease id, the slots of its folded events (set on every write of that lease in the batch). */
  readonly leaseSlots: Map<string, LeaseSlots>;
  /** The slot of the batch's last event written as a row; -1 when none. */
  readonly lastRowSlot: number;
}

/**
 * Numbers a batch's events and folds those that restate a lease write of the same batch. An event
 * with a `leaseId` whose lease is not written in the batch with that moment is a bug in the core
 * (it sets `leaseId` only with the lease write): it throws, and the batch commits nothing.
 */
export function planEvents(writes: readonly Write[]): EventPlan {
  const rowSlots = new Map<Write, number>();
  const leaseSlots = new Map<string, LeaseSlots>();
  let leases: Map<string, LeaseRecord[]> | null = null;
  let slots = 0;
  let lastRowSlot = -1;
  for (const w of writes) {
    if (w.table !== 'event') continue;
    const slot = slots++;
    const leaseId = w.row.leaseId;
    if (leaseId === undefined) {
      rowSlots.set(w, slot);
      lastRowSlot = slot;
      continue;
    }
    leases ??= leaseWrites(writes);
    const moment = momentOf(w.row.kind, w.row.atMs, leases.get(leaseId) ?? []);
    if (moment === null) throw new Error(`store: event ${w.row.kind} at ${w.row.atMs} restates lease ${leaseId}, but the batch writes no such change of that lease`);
    let s = leaseSlots.get(leaseId);
    if (!s) leaseSlots.set(leaseId, (s = { granted: null, ended: null }));
    if (s[moment] !== null) throw new Error(`store: two events restate the ${moment === 'granted' ? 'grant' : 'end'} of lease ${leaseId}`);
    s[moment] = slot;
  }
  return { slots, rowSlots, leaseSlots, lastRowSlot };
}

function leaseWrites(writes: readonly Write[]): Map<string, LeaseRecord[]> {
  const byId = new Map<string, LeaseRecord[]>();
  for (const w of writes) {
    if (w.table !== 'lease') continue;
    const list = byId.get(w.row.leaseId);
    if (list) list.push(w.row);
    else byId.set(w.row.leaseId, [w.row]);
  }
  return byId;
}

function momentOf(kind: string, atMs: number, rows: readonly LeaseRecord[]): keyof LeaseSlots | null {
  if (kind === grantKind) return rows.some((r) => r.startedAtMs === atMs) ? 'granted' : null;
  return rows.some((r) => r.end !== null && r.endedAtMs === atMs && endKinds[r.end.kind] === kind) ? 'ended' : null;
}

/** A lease row's columns that {@link leaseEventsOf} reads. */
export interface LeaseEventRow {
  readonly lease_id: string;
  readonly step_id: string;
  readonly peer_id: string;
  readonly attempt: number;
  readonly backup: boolean;
  readonly started_at_ms: number;
  readonly ended_at_ms: number | null;
  readonly granted_seq: number | null;
  readonly ended_seq: number | null;
}

/**
 * The events a lease row stands for, as the core wrote them: its grant and, when it ended with one,
 * its end. `end` is the parsed `end_json`; `durationMs` its step's (the text of `step.succeeded`).
 */
export function leaseEventsOf(r: LeaseEventRow, end: LeaseEnd | null, durationMs: number | null, cohortId: string): EventView[] {
  const out: EventView[] = [];
  const base = { stepId: r.step_id, peerId: r.peer_id };
  if (r.granted_seq !== null) {
    out.push({ seq: r.granted_seq, atMs: r.started_at_ms, kind: grantKind, ...base, detail: `attempt ${r.attempt}${r.backup ? ', backup copy' : ''}` });
  }
  if (r.ended_seq !== null) {
    const where = `leases[${r.lease_id}]`;
    if (end === null || r.ended_at_ms === null) throw new Error(`corrupt database: ${where}.ended_seq is set but the lease has no end`);
    out.push({ seq: r.ended_seq, atMs: r.ended_at_ms, kind: endKindOf(end, where), ...base, detail: endDetail(end, r, durationMs, `${where} of cohort ${cohortId}`) });
  }
  return out;
}

function endKindOf(end: LeaseEnd, where: string): string {
  const kind = endKinds[end.kind];
  if (kind === null) throw new Error(`corrupt database: ${where}.ended_seq is set but its end is unrecorded`);
  return kind;
}

function endDetail(end: LeaseEnd, r: LeaseEventRow, durationMs: number | null, where: string): string {
  switch (end.kind) {
    case 'succeeded':
      if (durationMs === null) throw new Error(`corrupt database: ${where} succeeded but its step has no duration`);
      return `${durationMs} ms, attempt ${r.attempt}`;
    case 'failed':
      return `exit ${end.exitCode ?? 'none'}, attempt ${r.attempt}`;
    case 'lost':
      return describeLoss(end.why);
    case 'aborted':
      return end.why;
    case 'unrecorded':
      return end.outcome;
  }
}

/** Stored events and lease-derived ones, in timeline order. */
export function mergeTimeline(stored: readonly EventView[], derived: readonly EventView[]): EventView[] {
  if (derived.length === 0) return [...stored];
  return [...stored, ...derived].sort((a, b) => a.seq - b.seq);
}

/**
 * A loaded snapshot with each step as the core last had it: `leased` while a lease of it is live
 * (its stored row says `pending`), `attempts` at least its highest lease attempt.
 */
export function foldLeasesIntoSteps(snapshot: Snapshot): Snapshot {
  const byStep = new Map<string, { attempt: number; live: boolean }>();
  for (const l of snapshot.leases) {
    const key = `${l.cohortId}\u0000${l.stepId}`;
    const s = byStep.get(key);
    if (!s) byStep.set(key, { attempt: l.attempt, live: l.end === null });
    else {
      if (l.attempt > s.attempt) s.attempt = l.attempt;
      if (l.end === null) s.live = true;
    }
  }
  if (byStep.size === 0) return snapshot;
  const steps = snapshot.steps.map((step): StepRecord => {
    const s = byStep.get(`${step.cohortId}\u0000${step.stepId}`);
    if (!s) return step;
    const status = step.status === 'pending' && s.live ? 'leased' : step.status;
    if (status === step.status && s.attempt <= step.attempts) return step;
    return { ...step, status, attempts: Math.max(step.attempts, s.attempt) };
  });
  return { ...snapshot, steps };
}

/**
 * A loaded snapshot with a row for every step of every cohort: a step with no stored row (SQLite
 * writes none until a step first changes, migration 9) is as its cohort started it, pending and
 * never leased (records.ts `pendingStepRecord`); {@link foldLeasesIntoSteps} then makes it leased
 * if a lease of it is live.
 */
export function withUnwrittenSteps(snapshot: Snapshot): Snapshot {
  const written = new Map<string, Set<string>>();
  for (const s of snapshot.steps) {
    const ids = written.get(s.cohortId);
    if (ids) ids.add(s.stepId);
    else written.set(s.cohortId, new Set([s.stepId]));
  }
  let steps: StepRecord[] | null = null;
  for (const c of snapshot.cohorts) {
    const ids = written.get(c.cohortId);
    if (ids !== undefined && ids.size === c.schema.steps.length) continue;
    for (const def of c.schema.steps) {
      if (ids?.has(def.id) === true) continue;
      (steps ??= [...snapshot.steps]).push(pendingStepRecord(c.cohortId, def.id));
    }
  }
  return steps === null ? snapshot : { ...snapshot, steps };
}
