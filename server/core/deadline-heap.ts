import type { Journal } from './journal.js';

/**
 * A min-heap of deadlines (`atMs`, earliest first). Entries are validated when
 * they come up (lazy deletion): the owner drops one whose subject moved on, so
 * nothing has to be removed from the middle. A push is never undone (an extra
 * entry is dropped as stale when it comes up); a pop is undone by pushing the
 * entry back, so a rolled-back tick loses nothing (as binary-heap.ts, whose
 * order of equal entries it keeps). Its own code rather than a `BinaryHeap`
 * with a comparator: the comparison is inline, not a call through a closure
 * that differs per heap (issue 17: every grant pushes two deadlines).
 */
export interface Deadline<T> {
  readonly atMs: number;
  readonly value: T;
}

export class DeadlineHeap<T> {
  private readonly items: Deadline<T>[] = [];

  get size(): number {
    return this.items.length;
  }

  push(atMs: number, value: T): void {
    this.insert({ atMs, value });
  }

  peek(): Deadline<T> | null {
    return this.items[0] ?? null;
  }

  /** Removes the earliest entry; the journal puts it back if the input is rolled back. */
  pop(journal: Journal | null): Deadline<T> | null {
    const items = this.items;
    if (items.length === 0) return null;
    const top = items[0]!;
    const last = items.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && items[r]!.atMs < items[l]!.atMs ? r : l;
        const c = items[child]!;
        if (!(c.atMs < last.atMs)) break;
        items[i] = c;
        i = child;
      }
      items[i] = last;
    }
    journal?.popped(this.undo, top);
    return top;
  }

  /** What the journal calls to undo a pop. */
  private readonly undo = { push: (entry: Deadline<T>): void => this.insert(entry) };

  private insert(entry: Deadline<T>): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const up = items[parent]!;
      if (!(entry.atMs < up.atMs)) break;
      items[i] = up;
      i = parent;
    }
    items[i] = entry;
  }
}
