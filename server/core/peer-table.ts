import type { CohortData } from './cohort-data.js';
import type { CoreTx } from './core-tx.js';
import type { ConnId } from './effects.js';
import { DeadlineHeap } from './deadline-heap.js';
import type { Journal } from './journal.js';
import { transitionPeer } from './peer-status.js';
import { transitionWork, type PeerWork } from './peer-work.js';
import type { PeerRecord, PeerStatus } from './records.js';
import type { SchedulerState } from './scheduler-state.js';
import { armStragglers } from './straggler-deadlines.js';

/**
 * The peers the scheduler tracks and what it knows of each: its persisted
 * record (peer-status.ts), the connection it is on, and what it is doing
 * (peer-work.ts), with the indexes over them (connection -> peer, the grace
 * period, the waiting peers, per cohort the available, idle, active members
 * and success listeners). Every change to a peer's status, connection, grace or
 * work state goes through a method here, so the indexes stay in step with the
 * peers; the inputs that drive them are in peer-sessions.ts.
 */

/** A peer as the scheduler tracks it: its persisted record, its connection and what it is doing. */
export interface PeerState {
  readonly peerId: string;
  readonly record: PeerRecord;
  readonly connId: ConnId | null;
  readonly work: PeerWork;
  /** Its connection's hello said `targetedUpdates`: it hears other steps' successes only while waiting. */
  readonly targetedUpdates?: boolean;
}

export class PeerTable {
  /** The current registration of each peer id (a peer id that joins again replaces its entry). */
  readonly byId: ReadonlyMap<string, PeerState> = new Map();
  /** Which peer joined on each open connection: the one place "joined" is known (adapters keep none). */
  readonly connections: ReadonlyMap<ConnId, PeerState> = new Map();
  /** Connections replaced by a resumed one: their last frames are ignored until they close. */
  readonly superseded: ReadonlySet<ConnId> = new Set();
  /** Peers in their grace period. */
  readonly inGrace: ReadonlySet<PeerState> = new Set();
  /** When grace periods end, earliest first (entries whose peer moved on are dropped when they come up). */
  readonly graceDeadlines = new DeadlineHeap<PeerState>();
  /** Peers told `wait` (their cohorts are the only ones a straggler backup can matter to). */
  readonly waiting: ReadonlySet<PeerState> = new Set();
  /** How many peers wait in each cohort (by id): the waiting index counted per cohort. */
  readonly waitingIn: ReadonlyMap<string, number> = new Map();
  /** Peers running a step under a lease the authority no longer counts (few): told to stop when the step succeeds. */
  readonly orphaned: ReadonlySet<PeerState> = new Set();
  /**
   * Per cohort id, its current members that are connected and idle or waiting: who a dispatch may give work (no scan of every member).
   * In this index and the three below, a cohort's set may be empty (it stays until the cohort leaves memory).
   */
  readonly available: ReadonlyMap<string, ReadonlySet<PeerState>> = new Map();
  /** Per cohort id, the part of `available` that is idle (not told `wait`): who a dispatch serves when nothing is assignable. */
  readonly idle: ReadonlyMap<string, ReadonlySet<PeerState>> = new Map();
  /** Per cohort id, its current members that are connected or in grace (a hello counts them; no scan of every member). */
  readonly active: ReadonlyMap<string, ReadonlySet<PeerState>> = new Map();
  /**
   * Per cohort id, its current connected members not told `complete` that hear every success: those
   * without `targetedUpdates`, and targeted ones while they wait (no scan of every member per success).
   */
  readonly successListeners: ReadonlyMap<string, ReadonlySet<PeerState>> = new Map();

  constructor(protected readonly host: SchedulerState) {}

  get(peerId: string): PeerState | undefined {
    return this.byId.get(peerId);
  }

  /** The peer that joined on this connection, if any. */
  onConnection(connId: ConnId): PeerState | undefined {
    return this.connections.get(connId);
  }

  /** Adds a peer (a new registration, or one restored) in its current state. */
  add(journal: Journal, peer: PeerState): void {
    journal.mapSet(this.byId, peer.peerId, peer);
    this.reindex(journal, peer, true);
  }

  /** Removes a peer whose cohort left memory. */
  remove(journal: Journal, peer: PeerState): void {
    if (this.byId.get(peer.peerId) === peer) journal.mapDelete(this.byId, peer.peerId);
    this.reindex(journal, peer, true);
  }

  /** The cohort is no longer open: its empty per-cohort index sets go (an open cohort keeps them, see `indexIf`). */
  dropEmptySets(journal: Journal, cohortId: string): void {
    dropEmpty(journal, this.available, cohortId);
    dropEmpty(journal, this.idle, cohortId);
    dropEmpty(journal, this.successListeners, cohortId);
    dropEmpty(journal, this.active, cohortId);
  }

  /** Whether the cohort has a connected idle or waiting member. O(1). */
  hasAvailable(cohort: CohortData): boolean {
    return (this.available.get(cohort.id)?.size ?? 0) > 0;
  }

  /** Binds (or with null unbinds) a peer's connection, keeping the connection index. */
  setConnection(journal: Journal, peer: PeerState, connId: ConnId | null): void {
    if (peer.connId !== null && this.connections.get(peer.connId) === peer) journal.mapDelete(this.connections, peer.connId);
    journal.set(peer, { connId });
    if (connId !== null) journal.mapSet(this.connections, connId, peer);
    this.reindex(journal, peer);
  }

  /** Moves a peer's registration along an edge of peer-status.ts, keeping the per-cohort indexes. */
  setStatus(journal: Journal, peer: PeerState, to: PeerStatus): void {
    transitionPeer(journal, peer.record, to);
    this.reindex(journal, peer, true);
  }

  /** Marks a connection as replaced by a resumed one (its late frames are ignored). */
  supersede(journal: Journal, connId: ConnId): void {
    journal.setAdd(this.superseded, connId);
  }

  /** Changes a peer's work state (peer-work.ts) and keeps the index of waiting peers; the peer counts as touched (invariants.ts). */
  setWork(tx: CoreTx, peer: PeerState, to: PeerWork): void {
    const journal = tx.journal;
    transitionWork(journal, peer, to);
    tx.touchedPeers.add(peer.peerId);
    const cohortId = peer.record.cohortId;
    const waitingHere = this.waitingIn.get(cohortId) ?? 0;
    if (to.kind === 'waiting' && !this.waiting.has(peer)) {
      journal.setAdd(this.waiting, peer);
      journal.mapSet(this.waitingIn, cohortId, waitingHere + 1);
      // A backup copy only matters to a waiting peer: the cohort's first one arms its straggler
      // deadlines (while anyone waits, every live lease that may get a backup has an entry).
      const cohort = this.host.cohorts.get(cohortId);
      if (cohort && waitingHere === 0) armStragglers(this.host, cohort);
    } else if (to.kind !== 'waiting' && this.waiting.has(peer)) {
      journal.setDelete(this.waiting, peer);
      if (waitingHere > 1) journal.mapSet(this.waitingIn, cohortId, waitingHere - 1);
      else journal.mapDelete(this.waitingIn, cohortId);
    }
    if (to.kind === 'orphaned') journal.setAdd(this.orphaned, peer);
    else journal.setDelete(this.orphaned, peer);
    this.reindex(journal, peer);
  }

  /** Whether the peer belongs in its cohort's `available` index: current, connected, idle or waiting. */
  isAvailable(peer: PeerState): boolean {
    return this.byId.get(peer.peerId) === peer && peer.connId !== null && (peer.work.kind === 'idle' || peer.work.kind === 'waiting');
  }

  /** Whether the peer belongs in its cohort's `idle` index: available and not told `wait`. */
  isIdle(peer: PeerState): boolean {
    return peer.work.kind === 'idle' && this.isAvailable(peer);
  }

  /** Whether the peer belongs in its cohort's `active` index: current, connected or in its grace period. */
  isActive(peer: PeerState): boolean {
    return this.byId.get(peer.peerId) === peer && (peer.record.status === 'connected' || peer.record.status === 'disconnected');
  }

  /** Whether the peer belongs in its cohort's `successListeners` index. */
  hearsEverySuccess(peer: PeerState): boolean {
    return this.byId.get(peer.peerId) === peer && peer.connId !== null && peer.work.kind !== 'done' && (peer.targetedUpdates !== true || peer.work.kind === 'waiting');
  }

  /**
   * Keeps the peer's entries in its cohort's indexes. `status`: its registration changed (added,
   * removed, or moved along peer-status.ts), so the `active` index is looked at too (a change of
   * connection or work never changes it).
   */
  private reindex(journal: Journal, peer: PeerState, status = false): void {
    const cohortId = peer.record.cohortId;
    const keepEmpty = this.host.cohorts.get(cohortId)?.record.status === 'open';
    indexIf(journal, this.available, cohortId, peer, this.isAvailable(peer), keepEmpty);
    indexIf(journal, this.idle, cohortId, peer, this.isIdle(peer), keepEmpty);
    indexIf(journal, this.successListeners, cohortId, peer, this.hearsEverySuccess(peer), keepEmpty);
    if (status) indexIf(journal, this.active, cohortId, peer, this.isActive(peer), keepEmpty);
  }

  /** The cohort's connected idle or waiting members, in join order. */
  availableIn(cohort: CohortData): PeerState[] {
    return inJoinOrder(cohort, this.available.get(cohort.id));
  }

  /** The cohort's connected idle members (not told `wait`), in join order. */
  idleIn(cohort: CohortData): PeerState[] {
    return inJoinOrder(cohort, this.idle.get(cohort.id));
  }

  /** Starts a peer's grace period index entry (the record already holds `graceEndsAtMs`). */
  enterGrace(journal: Journal, peer: PeerState, graceEndsAtMs: number): void {
    journal.setAdd(this.inGrace, peer);
    this.graceDeadlines.push(graceEndsAtMs, peer);
  }

  /** Ends a peer's grace period index entry (it resumed, left, or joined anew). */
  leaveGrace(journal: Journal, peer: PeerState): void {
    journal.setDelete(this.inGrace, peer);
  }

  /** The current grace deadline entry is this one (not one the peer has since left or replaced). */
  graceEntryValid(peer: PeerState, atMs: number): boolean {
    return this.inGrace.has(peer) && this.byId.get(peer.peerId) === peer && peer.record.graceEndsAtMs === atMs;
  }

  /** The earliest grace deadline still in force, or null (stale entries are dropped on the way). */
  nextGraceAtMs(): number | null {
    for (let top = this.graceDeadlines.peek(); top !== null; top = this.graceDeadlines.peek()) {
      if (this.graceEntryValid(top.value, top.atMs)) return top.atMs;
      this.graceDeadlines.pop(null); // stale: the peer resumed, left or was replaced
    }
    return null;
  }

  /** Members whose current registration is in this cohort (a peer id may have moved on since). */
  *members(cohort: CohortData): Iterable<PeerState> {
    for (const peerId of cohort.members) {
      const peer = this.byId.get(peerId);
      if (peer && peer.record.cohortId === cohort.id) yield peer;
    }
  }

  hasWaitingMember(cohort: CohortData): boolean {
    return this.waitingIn.has(cohort.id);
  }

  /** Members that are connected or in their grace period. O(1): the `active` index. */
  activeMembers(cohort: CohortData): number {
    return this.active.get(cohort.id)?.size ?? 0;
  }

  /** Every member has left on purpose (bye, or closed after it was done); false for a cohort nobody joined. */
  everyMemberLeft(cohort: CohortData): boolean {
    // A member connected or in grace has not left: O(1) while anyone is active (no walk over the members per input).
    if (this.activeMembers(cohort) > 0) return false;
    let members = 0;
    for (const peer of this.members(cohort)) {
      if (peer.record.status !== 'left') return false;
      members++;
    }
    return members > 0;
  }

  /**
   * The connections a success of a step built by `builderId` goes to, in join order: the cohort's
   * success listeners, and the builder (its report's acknowledgement). O(k log k) for k of them.
   */
  successConnections(cohort: CohortData, builderId: string | null): ConnId[] {
    const listeners = this.successListeners.get(cohort.id);
    const builder = builderId === null ? undefined : this.byId.get(builderId);
    const withBuilder = builder !== undefined && builder.record.cohortId === cohort.id && builder.connId !== null && builder.work.kind !== 'done' && !listeners?.has(builder);
    return connIdsInJoinOrder(cohort, listeners, withBuilder ? builder : undefined);
  }

  /** The connections of members that still take part (connected and not told `complete`). */
  workingConnections(cohort: CohortData): ConnId[] {
    const connIds: ConnId[] = [];
    for (const peer of this.members(cohort)) if (peer.connId !== null && peer.work.kind !== 'done') connIds.push(peer.connId);
    return connIds;
  }
}

/**
 * A cohort's peers (and `extra`) in join order (`memberOrder`). A few are sorted; many (an eighth of
 * the members or more) are placed by their join index into slots, then gathered: O(members), no comparisons.
 */
function inJoinOrder(cohort: CohortData, set: ReadonlySet<PeerState> | undefined, extra?: PeerState): PeerState[] {
  const n = (set?.size ?? 0) + (extra ? 1 : 0);
  if (n === 0) return [];
  const order = cohort.memberOrder;
  if (n * 8 < order.size || n < 4) {
    const peers = set ? [...set] : [];
    if (extra) peers.push(extra);
    if (n > 1) peers.sort((a, b) => order.get(a.peerId)! - order.get(b.peerId)!);
    return peers;
  }
  const slots: (PeerState | undefined)[] = new Array<PeerState | undefined>(order.size);
  if (set) for (const peer of set) slots[order.get(peer.peerId)!] = peer;
  if (extra) slots[order.get(extra.peerId)!] = extra;
  const peers: PeerState[] = [];
  for (const peer of slots) if (peer !== undefined) peers.push(peer);
  return peers;
}

/** The connections of {@link inJoinOrder}'s peers (all connected), without the array of peers when they are many. */
function connIdsInJoinOrder(cohort: CohortData, set: ReadonlySet<PeerState> | undefined, extra?: PeerState): ConnId[] {
  const n = (set?.size ?? 0) + (extra ? 1 : 0);
  if (n * 8 < cohort.memberOrder.size || n < 4) return inJoinOrder(cohort, set, extra).map((p) => p.connId!);
  const order = cohort.memberOrder;
  const slots: (ConnId | undefined)[] = new Array<ConnId | undefined>(order.size);
  if (set) for (const peer of set) slots[order.get(peer.peerId)!] = peer.connId!;
  if (extra) slots[order.get(extra.peerId)!] = extra.connId!;
  const connIds: ConnId[] = [];
  for (const connId of slots) if (connId !== undefined) connIds.push(connId);
  return connIds;
}

/**
 * Keeps `peer` in (or out of) the set of `cohortId` in a per-cohort index. While the cohort is open
 * an emptied set stays (a member going idle and busy again on every assignment would otherwise make
 * a new set each time, issue 17); otherwise it is dropped, and a cohort that stops being open drops
 * its empty sets then (`PeerTable.dropEmptySets`), so no set outlives its cohort.
 */
function indexIf(journal: Journal, index: ReadonlyMap<string, ReadonlySet<PeerState>>, cohortId: string, peer: PeerState, member: boolean, keepEmpty: boolean): void {
  const set = index.get(cohortId);
  if (member) {
    if (set === undefined) journal.mapSet(index, cohortId, new Set([peer]));
    else journal.setAdd(set, peer);
  } else if (set !== undefined && set.has(peer)) {
    journal.setDelete(set, peer);
    if (set.size === 0 && !keepEmpty) journal.mapDelete(index, cohortId);
  }
}

/** Drops the cohort's set from a per-cohort index when it is empty. */
function dropEmpty(journal: Journal, index: ReadonlyMap<string, ReadonlySet<PeerState>>, cohortId: string): void {
  if (index.get(cohortId)?.size === 0) journal.mapDelete(index, cohortId);
}
