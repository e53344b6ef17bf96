import { Cohort } from './cohort.js';
import { sweep, sweepBacklog } from './retention-sweep.js';
import { armStragglers, fireStragglers, nextStragglerAtMs } from './straggler-deadlines.js';
import { CoreTx } from './core-tx.js';
import type { AdminResult, ConnId, CoreConfig, CoreInput, CoreOutput, Effect, IdSource } from './core-types.js';
import { checkAll, checkTouched } from './invariants.js';
import type { PeerState } from './peer-table.js';
import { heldLeaseId, idleWork } from './peer-work.js';
import type { Snapshot, StepRecord } from './records.js';
import { SchedulerState } from './scheduler-state.js';

/**
 * The scheduler: a deterministic state machine, `handle(input, now) -> { writes, effects }`.
 * It routes each input to its owner, whose handler reads top to bottom:
 * - the peer sessions (peer-sessions.ts, over peer-table.ts) own a peer's
 *   connection, grace and work state: hello (join or resume), the connection
 *   side of a `step.finished`, drops, bye, the end of grace;
 * - a cohort (cohort.ts, over cohort-leases.ts and cohort-data.ts) owns its
 *   steps and leases and their transitions: a report of one of its leases
 *   (`finish`), a lease past its max age, settling after every input
 *   (complete, abandon, or give idle members work or a `wait`), admin cancel
 *   and retry;
 * - time (`tick`) goes to each deadline's owner, from min-heaps.
 * What they share (the cohorts by id, the lease routing index, memos,
 * durations, the deadline heaps) is {@link SchedulerState}.
 *
 * An input is applied whole or not at all: every change goes through the
 * input's journal; if anything throws (an illegal transition, a broken
 * invariant, a bug), the journal is rolled back, no write leaves, and the
 * output carries the error (`fault`) and an INTERNAL error for the sender.
 * The machines: step-status.ts, lease-state.ts, cohort-status.ts,
 * peer-status.ts, peer-work.ts. The invariants: invariants.ts, asserted after
 * every input over what it touched.
 * Time is the `now` argument; ids come from the injected {@link IdSource}.
 */
export class Scheduler {
  private readonly state: SchedulerState;
  /** The transaction every `handle` runs in, begun anew per input (its sets and journal log are reused). */
  private readonly tx = new CoreTx(0);

  constructor(config: CoreConfig, ids: IdSource) {
    this.state = new SchedulerState(config, ids);
  }

  /** Rebuilds state from the store after a restart: every peer comes back disconnected, in grace. */
  restore(snapshot: Snapshot, now: number): CoreOutput {
    const state = this.state;
    const tx = new CoreTx(now);
    const j = tx.journal;
    j.set(state, { lastNow: now });
    for (const d of snapshot.durations) j.mapSet(state.durations, d.durationKey, Object.freeze(Object.assign({}, d)));
    for (const m of snapshot.memos) if (now < m.expiresAtMs) state.putMemo(j, Object.freeze(Object.assign({}, m)));
    const stepsByCohort = new Map<string, StepRecord[]>();
    for (const s of snapshot.steps) {
      const list = stepsByCohort.get(s.cohortId);
      if (list) list.push({ ...s });
      else stepsByCohort.set(s.cohortId, [{ ...s }]);
    }
    for (const record of snapshot.cohorts) state.indexCohort(tx, new Cohort(state, { ...record }, stepsByCohort.get(record.cohortId) ?? []));
    for (const row of snapshot.leases) {
      const cohort = state.cohorts.get(row.cohortId);
      if (!cohort) continue;
      cohort.addLease(j, { ...row });
      if (row.end?.kind === 'aborted' && row.end.why === 'max-age') j.mapSet(cohort.leaseTimeouts, row.stepId, (cohort.leaseTimeouts.get(row.stepId) ?? 0) + 1);
    }
    for (const row of snapshot.peers) {
      const cohort = state.cohorts.get(row.cohortId);
      if (!cohort) continue;
      const record = { ...row };
      cohort.addMember(j, record.peerId, record.registration);
      const peer: PeerState = { peerId: record.peerId, record, connId: null, work: idleWork };
      state.peers.add(j, peer);
      if (record.status === 'connected' || record.status === 'disconnected') {
        if (record.status === 'connected') state.peers.setStatus(j, peer, 'disconnected');
        const graceEndsAtMs = now + (record.resumable ? state.config.leaseGraceMs : 0);
        j.set(record, { graceEndsAtMs });
        state.peers.enterGrace(j, peer, graceEndsAtMs);
        tx.peer(record);
      }
    }
    for (const cohort of state.cohorts.values()) {
      for (const live of [...cohort.liveLeases.values()]) {
        for (const lease of live) {
          const holder = state.peers.get(lease.peerId);
          if (holder && holder.record.cohortId === cohort.id && state.peers.inGrace.has(holder) && heldLeaseId(holder.work) === null) {
            state.peers.setWork(tx, holder, { kind: 'running', leaseId: lease.leaseId });
            // Re-based: a lease stored on an axis ahead of this process's (the wall clock went back) starts now at the latest.
            state.leaseAgeDeadlines.push(Math.min(lease.startedAtMs, now) + state.maxLeaseAgeMs(cohort, lease.stepId), lease);
          } else {
            cohort.endLease(tx, lease, { kind: 'lost', why: 'restart' });
          }
        }
      }
      for (const step of cohort.ordered) {
        // A lease whose holder is not coming back, or a leased step without a live lease row.
        if (step.status === 'leased' && cohort.live(step.stepId).length === 0) cohort.returnToPending(tx, step, 'restart');
      }
      // Restoring resolved its last step (one that lost its peer once too often): it completes now.
      if (cohort.record.status === 'open' && cohort.unresolved === 0) tx.dirty.add(cohort);
      armStragglers(state, cohort);
    }
    for (let i = 0; i < tx.dirty.size; i++) tx.dirty.at(i).settle(tx);
    j.set(state, { nextSweepAtMs: now });
    checkAll(state);
    j.commit();
    return tx.output();
  }

  handle(input: CoreInput, now: number): CoreOutput {
    const state = this.state;
    const tx = this.tx;
    tx.begin(now);
    try {
      tx.journal.field(state, 'lastNow', now);
      if (state.nextSweepAtMs === 0) tx.journal.field(state, 'nextSweepAtMs', now + state.config.sweepIntervalMs);
      this.apply(tx, input);
      // After every input: each cohort it touched completes, is abandoned, or gives idle members work.
      // Settling may dirty another cohort; the loop reaches it too.
      for (let i = 0; i < tx.dirty.size; i++) tx.dirty.at(i).settle(tx);
      checkTouched(state, tx);
      tx.journal.commit();
      return tx.output();
    } catch (fault) {
      tx.journal.rollback();
      return faultOutput(input, fault);
    }
  }

  private apply(tx: CoreTx, input: CoreInput): void {
    const state = this.state;
    switch (input.kind) {
      case 'hello':
        return state.peers.hello(tx, input);
      case 'finished':
        return state.peers.finished(tx, input);
      case 'disconnected':
        return state.peers.disconnected(tx, input.connId);
      case 'bye':
        return state.peers.bye(tx, input.connId);
      case 'tick':
        return this.onTick(tx);
      case 'drain':
        return tx.journal.set(state, { draining: true });
      case 'cancel':
        tx.admin = this.adminCohort(input.cohortId, (cohort) => cohort.adminCancel(tx));
        return;
      case 'retry':
        tx.admin = this.adminCohort(input.cohortId, (cohort) => cohort.adminRetry(tx, input.stepId));
        return;
    }
  }

  /** An admin input for a cohort in memory (open or recently resolved), or 404. */
  private adminCohort(cohortId: string, act: (cohort: Cohort) => AdminResult): AdminResult {
    const cohort = this.state.cohorts.get(cohortId);
    if (!cohort) return { ok: false, status: 404, code: 'NOT_FOUND', message: `no open or recent cohort ${cohortId}` };
    return act(cohort);
  }

  /**
   * Time passed: grace periods end (`now >= graceEndsAtMs`), leases pass
   * their max age, stragglers may get backups, and a bounded batch of the
   * retention sweep runs (all four from min-heaps: a tick's cost does not
   * depend on history).
   */
  private onTick(tx: CoreTx): void {
    const state = this.state;
    state.peers.expireDue(tx);
    for (let top = state.leaseAgeDeadlines.peek(); top !== null && top.atMs <= tx.now; top = state.leaseAgeDeadlines.peek()) {
      state.leaseAgeDeadlines.pop(tx.journal);
      const lease = top.value;
      if (lease.end === null) state.leaseOwners.get(lease.leaseId)!.expireLeaseAge(tx, lease, top.atMs - lease.startedAtMs);
    }
    fireStragglers(state, tx);
    if (tx.now >= state.nextSweepAtMs) {
      sweep(state, tx);
      tx.journal.set(state, { nextSweepAtMs: sweepBacklog(state, tx.now) ? tx.now : tx.now + state.config.sweepIntervalMs });
    }
  }

  /**
   * The next time `tick` has work to do, or null: the earliest grace deadline,
   * lease age limit, straggler backup (in a cohort with a waiting peer) or sweep entry, each from
   * a min-heap; the sweep no earlier than its interval allows, unless a backlog
   * is being worked off. Costs O(log n) per stale heap entry dropped.
   */
  nextDeadlineMs(): number | null {
    const state = this.state;
    let next = state.peers.nextGraceAtMs();
    for (let top = state.leaseAgeDeadlines.peek(); top !== null; top = state.leaseAgeDeadlines.peek()) {
      if (top.value.end === null) {
        next = earlier(next, top.atMs);
        break;
      }
      state.leaseAgeDeadlines.pop(null); // stale: the lease ended
    }
    const straggler = nextStragglerAtMs(state);
    if (straggler !== null) next = earlier(next, straggler);
    const sweepTop = state.sweepDeadlines.peek();
    if (sweepTop !== null) next = earlier(next, Math.max(state.nextSweepAtMs, sweepTop.atMs));
    return next;
  }

  /** Whether a `drain` input was applied: no new leases are granted. */
  get isDraining(): boolean {
    return this.state.draining;
  }

  /**
   * Gauges for metrics, from indexes: connected peers are the connection
   * index, and live leases exist only in open cohorts. Costs the open cohorts,
   * never the retained history.
   */
  counts(): { peersConnected: number; cohortsOpen: number; leasesLive: number } {
    let leasesLive = 0;
    for (const c of this.state.openCohorts) for (const live of c.liveLeases.values()) leasesLive += live.length;
    return { peersConnected: this.state.peers.connections.size, cohortsOpen: this.state.openCohorts.size, leasesLive };
  }

  /** Work counters for tests that check a cost does not grow with history (cohorts a lookup examined). */
  get matcherVisits(): number {
    return this.state.matcher.visited;
  }

  /** Members dispatches asked the picker about (for tests that check waiting members are not tried again for nothing). */
  get pickerTries(): number {
    return this.state.pickerTries;
  }

  /** Cohorts in memory, open and retained (for tests and the day benchmark). */
  get cohortsInMemory(): number {
    return this.state.cohorts.size;
  }

  /** The connection a peer id is on, if it is connected. */
  peerConnId(peerId: string): ConnId | null {
    return this.state.peers.get(peerId)?.connId ?? null;
  }

  /** Every invariant over all state (tests; production checks what each input touched). Throws `InvariantViolation`. */
  checkInvariants(): void {
    checkAll(this.state);
  }

  /** The persisted part of memory, as the store would load it (for tests that compare memory with the database). */
  dump(): Snapshot {
    const s = this.state;
    const cohorts = [...s.cohorts.values()];
    return {
      cohorts: cohorts.map((c) => ({ ...c.record })),
      steps: cohorts.flatMap((c) => c.ordered.map((step) => ({ ...step }))),
      leases: cohorts.flatMap((c) => [...c.leases.values()].map((l) => ({ ...l }))),
      peers: [...s.peers.byId.values()].map((p) => ({ ...p.record })),
      memos: [...s.memos.values()].map((m) => ({ ...m })),
      durations: [...s.durations.values()].map((d) => ({ ...d })),
    };
  }
}

/** The earlier of a deadline (or none) and `atMs`. */
function earlier(next: number | null, atMs: number): number {
  return next === null || atMs < next ? atMs : next;
}

/** An input that threw: nothing changed; the sender (if any) is told INTERNAL, an admin caller gets 500. */
function faultOutput(input: CoreInput, fault: unknown): CoreOutput {
  const effects: Effect[] = [];
  const connId = 'connId' in input ? input.connId : null;
  if (connId !== null) effects.push({ kind: 'refuse', connId, refusal: { kind: 'internal' } });
  const admin = input.kind === 'cancel' || input.kind === 'retry' ? { ok: false as const, status: 500 as const, code: 'INTERNAL', message: 'internal error; see the authority log' } : null;
  return { writes: [], effects, admin, fault };
}
