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
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  /** Removes the first entry; the journal puts it back if the input is rolled back. */
  pop(journal: Journal | null): T | null {
    const items = this.items;
    if (items.length === 0) return null;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && this.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    journal?.onUndo(() => this.push(top));
    return top;
  }
}
