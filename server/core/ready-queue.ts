import { BinaryHeap } from './binary-heap.js';
import type { Journal } from './journal.js';
import type { StepRecord } from './records.js';

/**
 * A cohort's steps that are ready to lease (pending, every need succeeded),
 * best first (DESIGN §6): retries (a failed or lost attempt) before anything
 * else, then the longest critical path, then schema order. A binary min-heap
 * kept as steps change, so taking the best step costs O(log n), not a
 * rebuild and sort of every step per dispatch (issue 17, item 2).
 *
 * Entries are checked when they come up (lazy validation, binary-heap.ts,
 * as in deadline-heap.ts): a step that is no longer ready is dropped; one
 * whose retry flag changed since it was queued is queued again under its new rank.
 * The cohort queues a step whenever it may have become ready (it went back to
 * pending, or a need of it succeeded), after the fields of its rank are set.
 * A queued step's rank can only fall (an admin retry clears its failures; its
 * failures and lost leases rise only while it is leased), so an entry ranked
 * too high is noticed when it comes up, and no step is ever passed over.
 * So every ready step has an entry under its current rank (invariants.ts
 * checks this over all state in tests).
 *
 * A push is never undone (an extra entry is dropped as stale, or is a
 * duplicate of a ready step, taken once: the grant makes it leased); a pop is
 * undone by pushing the entry back, so a rolled-back input loses no entry.
 */
export interface ReadyEntry {
  readonly step: StepRecord;
  /** 1 for a retry (the step has failed or lost a lease before), else 0. */
  readonly retry: number;
  readonly priorityMs: number;
  readonly index: number;
}

/** 1 when the step is a retry: it failed or lost a lease before (ranked before fresh steps). */
export function retryOf(step: StepRecord): number {
  return step.failures > 0 || step.lostLeases > 0 ? 1 : 0;
}

/** Whether `a` is taken before `b`. */
function before(a: ReadyEntry, b: ReadyEntry): boolean {
  if (a.retry !== b.retry) return a.retry > b.retry;
  if (a.priorityMs !== b.priorityMs) return a.priorityMs > b.priorityMs;
  return a.index < b.index;
}

export class ReadyQueue {
  private readonly heap = new BinaryHeap<ReadyEntry>(before);

  /**
   * @param isReady whether a step is ready now (pending, needs met)
   * @param rankOf the fixed part of a step's rank: its critical-path priority and schema index
   */
  constructor(
    private readonly isReady: (step: StepRecord) => boolean,
    private readonly rankOf: (step: StepRecord) => { readonly priorityMs: number; readonly index: number },
  ) {}

  /** Queues a step that may have become ready (a no-op when it is not). */
  offer(step: StepRecord): void {
    if (!this.isReady(step)) return;
    const rank = this.rankOf(step);
    this.heap.push({ step, retry: retryOf(step), priorityMs: rank.priorityMs, index: rank.index });
  }

  /** Entries held, stale ones included (for tests). */
  get size(): number {
    return this.heap.size;
  }

  /** Every entry, in no order (the invariant check looks for each ready step). */
  entries(): readonly ReadyEntry[] {
    return this.heap.entries();
  }

  /**
   * Takes the best ready step's entry off the queue (journaled: a rollback
   * puts it back), dropping stale entries on the way; null when no step is ready.
   */
  take(journal: Journal): ReadyEntry | null {
    for (let top = this.heap.pop(journal); top !== null; top = this.heap.pop(journal)) {
      if (!this.isReady(top.step)) continue;
      const retry = retryOf(top.step);
      if (retry === top.retry) return top;
      this.heap.push({ step: top.step, retry, priorityMs: top.priorityMs, index: top.index });
    }
    return null;
  }

  /** Puts back an entry taken but not used (the peer could not run the step). */
  putBack(entry: ReadyEntry): void {
    this.heap.push(entry);
  }

  /** Whether some step is ready (valid entries stay; stale ones on top are dropped, journaled). O(1) when the top is valid. */
  hasReady(journal: Journal): boolean {
    const top = this.heap.peek();
    if (top !== null && this.isReady(top.step) && retryOf(top.step) === top.retry) return true;
    const taken = this.take(journal);
    if (taken === null) return false;
    this.heap.push(taken);
    return true;
  }
}
