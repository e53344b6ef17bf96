/**
 * A set of what one input touched (rows to write, cohorts to settle, peers to check), kept in
 * insertion order and emptied for the next input (core-tx.ts `begin`). A `Set` would do, but
 * `Set.prototype.clear` allocates a new table on every call, and a transaction empties eight of
 * them per input (issue 17). Most inputs touch a handful of things: up to
 * {@link linearLimit} members are looked up by a scan of the array; past that a `Set` indexes
 * them until the next `clear`. Read by index (`size`, `at`): a member added while a loop runs is
 * visited by it, as with a `Set`'s iterator.
 */
const linearLimit = 8;

/** The reading side of an {@link InputSet}. */
export interface ReadonlyInputSet<T> {
  readonly size: number;
  at(i: number): T;
  has(value: T): boolean;
}

export class InputSet<T> implements ReadonlyInputSet<T> {
  private items: T[] = [];
  private count = 0;
  private index: Set<T> | null = null;

  get size(): number {
    return this.count;
  }

  /** The member at `i` (0 <= i < size), in insertion order. */
  at(i: number): T {
    return this.items[i]!;
  }

  has(value: T): boolean {
    if (this.index !== null) return this.index.has(value);
    const items = this.items;
    for (let i = 0; i < this.count; i++) if (items[i] === value) return true;
    return false;
  }

  add(value: T): void {
    if (this.has(value)) return;
    this.items[this.count++] = value;
    if (this.index !== null) this.index.add(value);
    else if (this.count > linearLimit) this.index = new Set(this.items.slice(0, this.count));
  }

  /** Empties it; slots are cleared so nothing from the last input is kept alive. */
  clear(): void {
    if (this.count === 0) return;
    if (this.count > 1024) this.items = [];
    else this.items.fill(undefined as T, 0, this.count);
    this.count = 0;
    this.index = null;
  }

  /** The members, in insertion order (a copy; for code off the per-input path). */
  toArray(): T[] {
    return this.items.slice(0, this.count);
  }
}
