import type { Journal } from './journal.js';

/**
 * A binary heap ordered by `before(a, b)` (a comes out first), for the core's
 * queues (deadline-heap.ts, ready-queue.ts). Their owners validate entries when
 * they come up (lazy deletion), so nothing is removed from the middle. A push
 * is never undone (an extra entry is dropped as stale when it comes up); a pop
 * is undone by pushing the entry back, so a rolled-back input loses nothing.
 */
export class BinaryHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  /** Every entry, in no order. */
  entries(): readonly T[] {
    return this.items;
  }

  peek(): T | null {
    return this.items[0] ?? null;
  }

  push(entry: T): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    // Sift up: parents that come after the entry move down, then the entry goes into the hole.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const up = items[parent]!;
      if (!this.before(entry, up)) break;
      items[i] = up;
      i = parent;
    }
    items[i] = entry;
  }

  /** Removes the first entry; the journal puts it back if the input is rolled back. */
  pop(journal: Journal | null): T | null {
    const items = this.items;
    if (items.length === 0) return null;
    const top = items[0]!;
    const last = items.pop()!;
    const n = items.length;
    if (n > 0) {
      // Sift down: the last entry goes into the hole at the top once no child comes before it.
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && this.before(items[r]!, items[l]!) ? r : l;
        const c = items[child]!;
        if (!this.before(c, last)) break;
        items[i] = c;
        i = child;
      }
      items[i] = last;
    }
    journal?.popped(this, top);
    return top;
  }
}
