import { BinaryHeap } from './binary-heap.js';
import type { Journal } from './journal.js';

/**
 * A min-heap of deadlines (`atMs`, earliest first). Entries are validated when
 * they come up (lazy deletion): the owner drops one whose subject moved on, so
 * nothing has to be removed from the middle. A push is never undone (an extra
 * entry is dropped as stale when it comes up); a pop is undone by pushing the
 * entry back, so a rolled-back tick loses nothing (binary-heap.ts).
 */
export class DeadlineHeap<T> {
  private readonly heap = new BinaryHeap<{ readonly atMs: number; readonly value: T }>((a, b) => a.atMs < b.atMs);

  get size(): number {
    return this.heap.size;
  }

  push(atMs: number, value: T): void {
    this.heap.push({ atMs, value });
  }

  peek(): { readonly atMs: number; readonly value: T } | null {
    return this.heap.peek();
  }

  /** Removes the earliest entry; the journal puts it back if the input is rolled back. */
  pop(journal: Journal | null): { readonly atMs: number; readonly value: T } | null {
    return this.heap.pop(journal);
  }
}
