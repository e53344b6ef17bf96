import { Cohort } from './cohort.js';
import { onCancel, onRetry, settle, sweep } from './cohort-lifecycle.js';
import { CoreTx } from './core-tx.js';
import type { ConnId, CoreConfig, CoreInput, CoreOutput, IdSource } from './core-types.js';
import { expireGrace, onBye, onDisconnected, onHello } from './peer-sessions.js';
import type { Snapshot, StepRecord } from './records.js';
import { SchedulerState, type PeerState } from './scheduler-state.js';
import { endLease, onFinished, returnToPending } from './step-lifecycle.js';
import { stragglerAtMs } from './step-picker.js';

/**
 * The scheduler: a deterministic state machine, `handle(input, now) -> { writes, effects }`.
 * Its parts: peer-sessions.ts (hello, resume, drops, grace), step-lifecycle.ts
 * (completions, success, failure, leases), cohort-lifecycle.ts (dispatch,
 * completion, admin, retention), all over one {@link SchedulerState}.
 *
 * Peer states: connected -> disconnected (grace) -> connected (resumed) | gone;
 *              connected -> left (bye, or disconnected after `complete`).
 * Step states and edges: see step-status.ts.
 * Lease states: live -> succeeded | failed | lost | aborted (final).
 * Invariants (checked by the property test):
 * - a step is `leased` iff it has a live lease; at most two live leases, the second a backup;
 * - `succeeded` is final and written once (the store's UNIQUE constraint backs this);
 * - attempt numbers of a step's leases only rise;
 * - a peer holds at most one live lease; a lost lease's completion counts only
 *   while its step is unresolved;
 * - no step is lost: an idle connected peer of an open cohort is never left
 *   waiting next to a step it could run.
 * Time is the `now` argument; ids come from the injected {@link IdSource}.
 */
export class Scheduler {
  private readonly state: SchedulerState;

  constructor(config: CoreConfig, ids: IdSource) {
    this.state = new SchedulerState(config, ids);
  }

  /** Rebuilds state from the store after a restart: every peer comes back disconnected, in grace. */
  restore(snapshot: Snapshot, now: number): CoreOutput {
    const state = this.state;
    const tx = new CoreTx(now);
    state.lastNow = now;
    for (const d of snapshot.durations) state.durations.set(d.durationKey, { ...d });
    for (const m of snapshot.memos) if (now < m.expiresAtMs) state.memos.set(m.memoKey, m);
    const stepsByCohort = new Map<string, StepRecord[]>();
    for (const s of snapshot.steps) {
      const list = stepsByCohort.get(s.cohortId);
      if (list) list.push(s);
      else stepsByCohort.set(s.cohortId, [s]);
    }
    for (const record of snapshot.cohorts) state.indexCohort(new Cohort(record, stepsByCohort.get(record.cohortId) ?? []));
    for (const lease of snapshot.leases) {
      const cohort = state.cohorts.get(lease.cohortId);
      if (!cohort) continue;
      state.leases.set(lease.leaseId, lease);
      if (lease.outcome === null) cohort.addLive(lease);
    }
    for (const record of snapshot.peers) {
      const cohort = state.cohorts.get(record.cohortId);
      if (!cohort) continue;
      cohort.members.add(record.peerId);
      cohort.addRepos(record.registration);
      const peer: PeerState = { record, connId: null, leaseId: null, orphan: null, waiting: false, done: false };
      state.peers.set(record.peerId, peer);
      if (record.status === 'connected' || record.status === 'disconnected') {
        record.status = 'disconnected';
        record.graceEndsAtMs = now + (record.resumable ? state.config.leaseGraceMs : 0);
        state.inGrace.add(peer);
        tx.peer(record);
      }
    }
    for (const cohort of state.cohorts.values()) {
      for (const live of [...cohort.liveLeases.values()]) {
        for (const lease of live) {
          const holder = state.peers.get(lease.peerId);
          if (holder && holder.record.cohortId === cohort.id && state.inGrace.has(holder) && holder.leaseId === null) holder.leaseId = lease.leaseId;
          else endLease(state, tx, cohort, lease, 'lost');
        }
      }
      for (const step of cohort.ordered) {
        // A lease whose holder is not coming back, or a leased step without a live lease row.
        if (step.status === 'leased' && cohort.live(step.stepId).length === 0) returnToPending(state, tx, cohort, step, 'its peer is gone after a restart');
      }
    }
    state.nextSweepAtMs = now;
    return tx.output();
  }

  handle(input: CoreInput, now: number): CoreOutput {
    const state = this.state;
    const tx = new CoreTx(now);
    state.lastNow = now;
    if (state.nextSweepAtMs === 0) state.nextSweepAtMs = now + state.config.sweepIntervalMs;
    switch (input.kind) {
      case 'hello':
        onHello(state, tx, input);
        break;
      case 'finished':
        onFinished(state, tx, input);
        break;
      case 'disconnected':
        onDisconnected(state, tx, input.connId, input.peerId);
        break;
      case 'bye':
        onBye(state, tx, input.connId, input.peerId);
        break;
      case 'tick':
        this.onTick(tx);
        break;
      case 'drain':
        state.draining = true;
        break;
      case 'cancel':
        onCancel(state, tx, input.cohortId);
        break;
      case 'retry':
        onRetry(state, tx, input.cohortId, input.stepId);
        break;
    }
    settle(state, tx);
    return tx.output();
  }

  /** Time passed: grace periods end (`now >= graceEndsAtMs`), stragglers may get backups, retention sweeps run. */
  private onTick(tx: CoreTx): void {
    const state = this.state;
    for (const peer of [...state.inGrace]) {
      if (peer.record.graceEndsAtMs !== null && tx.now >= peer.record.graceEndsAtMs) expireGrace(state, tx, peer);
    }
    for (const cohort of state.cohorts.values()) {
      if (cohort.record.status === 'open' && cohort.liveLeases.size > 0 && state.hasWaitingPeer(cohort)) tx.dirty.add(cohort);
    }
    if (tx.now >= state.nextSweepAtMs) {
      sweep(state, tx);
      state.nextSweepAtMs = tx.now + state.config.sweepIntervalMs;
    }
  }

  /** The next time `tick` has work to do, or null. */
  nextDeadlineMs(): number | null {
    const state = this.state;
    let next: number | null = null;
    const consider = (at: number): void => {
      if (next === null || at < next) next = at;
    };
    for (const peer of state.inGrace) if (peer.record.graceEndsAtMs !== null) consider(peer.record.graceEndsAtMs);
    const ctx = state.pickContext(state.lastNow);
    for (const cohort of state.cohorts.values()) {
      if (cohort.record.status !== 'open' || !state.hasWaitingPeer(cohort)) continue;
      for (const [stepId] of cohort.liveLeases) {
        const at = stragglerAtMs(ctx, cohort, cohort.steps.get(stepId)!);
        if (at !== null && at > state.lastNow) consider(at);
      }
    }
    if (state.memos.size > 0 || state.cohorts.size > 0) consider(state.nextSweepAtMs);
    return next;
  }

  /** Gauges for metrics. */
  counts(): { peersConnected: number; cohortsOpen: number; leasesLive: number } {
    let peersConnected = 0;
    for (const p of this.state.peers.values()) if (p.record.status === 'connected') peersConnected++;
    let cohortsOpen = 0;
    let leasesLive = 0;
    for (const c of this.state.cohorts.values()) {
      if (c.record.status === 'open') cohortsOpen++;
      for (const live of c.liveLeases.values()) leasesLive += live.length;
    }
    return { peersConnected, cohortsOpen, leasesLive };
  }

  /** The connection a peer id is on, if it is connected. */
  peerConnId(peerId: string): ConnId | null {
    return this.state.peers.get(peerId)?.connId ?? null;
  }
}
