import { describe, expect, it } from 'vitest';
import { BinaryHeap } from '../../server/core/binary-heap.js';
import { DeadlineHeap } from '../../server/core/deadline-heap.js';
import { Journal } from '../../server/core/journal.js';

/** A small deterministic generator (no Math.random in tests). */
function numbers(seed: number, count: number): number[] {
  const out: number[] = [];
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push(x % 1000);
  }
  return out;
}

describe('BinaryHeap', () => {
  it('pops in the order of its comparison, whatever the order of the pushes', () => {
    for (const seed of [1, 7, 42]) {
      const values = numbers(seed, 300);
      const heap = new BinaryHeap<number>((a, b) => a > b);
      for (const v of values) heap.push(v);
      expect(heap.size).toBe(300);
      const out: number[] = [];
      for (let v = heap.pop(null); v !== null; v = heap.pop(null)) out.push(v);
      expect(out).toEqual([...values].sort((a, b) => b - a));
      expect(heap.peek()).toBeNull();
    }
  });

  it('a rolled-back pop puts the entry back; a committed one does not', () => {
    const heap = new BinaryHeap<number>((a, b) => a < b);
    for (const v of [5, 3, 9, 1]) heap.push(v);
    const journal = new Journal();
    expect(heap.pop(journal)).toBe(1);
    expect(heap.pop(journal)).toBe(3);
    journal.rollback();
    expect(heap.size).toBe(4);
    expect(heap.peek()).toBe(1);
    const committed = new Journal();
    expect(heap.pop(committed)).toBe(1);
    committed.commit();
    expect([heap.pop(null), heap.pop(null), heap.pop(null), heap.pop(null)]).toEqual([3, 5, 9, null]);
  });

  it('DeadlineHeap gives the earliest deadline first', () => {
    const heap = new DeadlineHeap<string>();
    heap.push(30, 'c');
    heap.push(10, 'a');
    heap.push(20, 'b');
    expect(heap.peek()).toEqual({ atMs: 10, value: 'a' });
    expect([heap.pop(null)?.value, heap.pop(null)?.value, heap.pop(null)?.value, heap.pop(null)]).toEqual(['a', 'b', 'c', null]);
  });
});
