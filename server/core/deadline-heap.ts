import type { Journal } from './journal.js';

/**
 * A binary min-heap of deadlines (`atMs`, earliest first). Entries are
 * validated when they come up (lazy deletion): the owner drops one whose
 * subject moved on, so nothing has to be removed from the middle. A push is
 * never undone (an extra entry is dropped as stale when it comes up); a pop
 * is undone by pushing the entry back, so a rolled-back tick loses nothing.
 */
export class DeadlineHeap<T> {
  private readonly items: { atMs: number; value: T }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(atMs: number, value: T): void {
    const items = this.items;
    items.push({ atMs, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.atMs <= items[i]!.atMs) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  peek(): { readonly atMs: number; readonly value: T } | null {
    return this.items[0] ?? null;
  }

  /** Removes the earliest entry; the journal puts it back if the input is rolled back. */
  pop(journal: Journal | null): { readonly atMs: number; readonly value: T } | null {
    const items = this.items;
    const top = items[0];
    if (top === undefined) return null;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && items[l]!.atMs < items[m]!.atMs) m = l;
        if (r < items.length && items[r]!.atMs < items[m]!.atMs) m = r;
        if (m === i) break;
        [items[m], items[i]] = [items[i]!, items[m]!];
        i = m;
      }
    }
    journal?.onUndo(() => this.push(top.atMs, top.value));
    return top;
  }
}
