/**
 * The undo log that makes one input all-or-nothing. Every change to the
 * scheduler's state goes through a journal method, which records how to undo
 * it; `rollback()` undoes them newest first, so state is exactly what it was
 * before the input (an entry a rolled-back delete puts back may iterate later
 * in its map; no decision depends on that order). State objects are typed
 * read-only, so a change that bypasses the journal does not compile.
 *
 * Records are changed by replacing fields (`set`), never by mutating a nested
 * array or object in place, so a shallow copy of a record is a snapshot.
 */

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** The fields that hold a machine's state: they change only through that machine's `transition()`. */
export type MachineField = 'status' | 'work';

/** Fields a journal may set directly: everything but a machine's state. */
export type Patch<T> = Partial<Omit<T, MachineField>>;

/**
 * Fields whose value before the input the invariant check compares with: `attempts` may only
 * rise; a step's `status`, a cohort's derived counters and a peer's `work` let the check look
 * only at what the input changed (invariants.ts).
 */
export type TrackedField = 'attempts' | 'status' | 'work' | 'unresolved' | 'failedCount';
const trackedFields: ReadonlySet<PropertyKey> = new Set<TrackedField>(['attempts', 'status', 'work', 'unresolved', 'failedCount']);

export class Journal {
  private undo: (() => void)[] = [];
  /** The value each tracked field had before this input, per object (first write wins). */
  private before = new Map<object, Map<PropertyKey, unknown>>();

  /** Sets fields of a state object. */
  set<T extends object>(target: T, patch: Patch<T>): void {
    this.write(target, patch as Partial<T>);
  }

  /** Sets a machine's state field; only `transition()` functions call this, after checking the edge. */
  setState<T extends object, K extends MachineField & keyof T>(target: T, key: K, value: T[K]): void {
    this.write(target, { [key]: value } as unknown as Partial<T>);
  }

  private write<T extends object>(target: T, patch: Partial<T>): void {
    const obj = target as Writable<T>;
    for (const key of Object.keys(patch) as (keyof T)[]) {
      const old = obj[key];
      if (trackedFields.has(key)) this.noteBefore(obj, key, old);
      this.undo.push(() => {
        obj[key] = old;
      });
      obj[key] = patch[key] as T[keyof T];
    }
  }

  private noteBefore(obj: object, key: PropertyKey, old: unknown): void {
    let fields = this.before.get(obj);
    if (!fields) this.before.set(obj, (fields = new Map()));
    if (!fields.has(key)) fields.set(key, old);
  }

  /** What a tracked field of `target` was before this input; undefined if the input did not set it. */
  valueBefore<T extends object, K extends keyof T & TrackedField>(target: T, key: K): T[K] | undefined {
    return this.before.get(target)?.get(key) as T[K] | undefined;
  }

  mapSet<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): void {
    const m = map as Map<K, V>;
    if (m.has(key)) {
      const old = m.get(key) as V;
      this.undo.push(() => m.set(key, old));
    } else {
      this.undo.push(() => m.delete(key));
    }
    m.set(key, value);
  }

  mapDelete<K, V>(map: ReadonlyMap<K, V>, key: K): void {
    const m = map as Map<K, V>;
    if (!m.has(key)) return;
    const old = m.get(key) as V;
    this.undo.push(() => m.set(key, old));
    m.delete(key);
  }

  setAdd<T>(set: ReadonlySet<T>, value: T): void {
    const s = set as Set<T>;
    if (s.has(value)) return;
    this.undo.push(() => s.delete(value));
    s.add(value);
  }

  setDelete<T>(set: ReadonlySet<T>, value: T): void {
    const s = set as Set<T>;
    if (!s.has(value)) return;
    this.undo.push(() => s.add(value));
    s.delete(value);
  }

  /** Registers how to undo a change made outside the methods above (a heap pop). */
  onUndo(undo: () => void): void {
    this.undo.push(undo);
  }

  /** Undoes every change since the last commit, newest first. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
    this.undo = [];
    this.before = new Map();
  }

  /** Keeps every change: the input is complete. */
  commit(): void {
    this.undo = [];
    this.before = new Map();
  }

  /** Changes recorded since the last commit (for tests). */
  get size(): number {
    return this.undo.length;
  }
}
