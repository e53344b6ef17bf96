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
 *
 * The log is typed, not closures (issue 17): four slots per change (what to
 * undo, the object, the key, the old value) in one array the scheduler keeps
 * from input to input, so recording a change allocates nothing once the array
 * has grown to an input's size; commit clears the slots it used (nothing old is
 * kept alive) and rollback plays them back newest first. The same records tell
 * the invariant check what a field was before the input (`valueBefore`).
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

/** A heap (binary-heap.ts) whose pop the journal undoes by pushing the entry back. */
export interface UndoablePush<E> {
  push(entry: E): void;
}

// What each record undoes (slot 0 of four).
const undoField = 0; // obj[key] = old
const undoMapRestore = 1; // map.set(key, old)
const undoMapRemove = 2; // map.delete(key)
const undoSetAdd = 3; // set.add(key)
const undoSetRemove = 4; // set.delete(key)
const undoPush = 5; // heap.push(key)
const undoCall = 6; // (obj as function)()

/** Up to this many slots (64 changes), `valueBefore` scans the log; past it, it indexes the log once. */
const scannedLogSlots = 256;

/** A log that grew past this many slots in one input is dropped at commit rather than kept for the next. */
const keptLogSlots = 1 << 14;

export class Journal {
  private log: unknown[] = [];
  private top = 0;
  /**
   * For a long log, the value each field had before this input, per object (first write wins), built
   * on the first `valueBefore` over the log up to `indexedTop` (short logs are scanned instead: no map
   * to make or clear per input).
   */
  private index: Map<object, Map<PropertyKey, unknown>> | null = null;
  private indexedTop = 0;

  private record(op: number, target: unknown, key: unknown, old: unknown): void {
    const log = this.log;
    const i = this.top;
    log[i] = op;
    log[i + 1] = target;
    log[i + 2] = key;
    log[i + 3] = old;
    this.top = i + 4;
  }

  /** Sets fields of a state object. */
  set<T extends object>(target: T, patch: Patch<T>): void {
    for (const key in patch) this.write(target, key as keyof T, (patch as T)[key as keyof T]);
  }

  /** Sets one field of a state object (no patch object: for the paths every assignment takes). */
  field<T extends object, K extends Exclude<keyof T, MachineField>>(target: T, key: K, value: T[K]): void {
    this.write(target, key, value);
  }

  /** Sets a machine's state field; only `transition()` functions call this, after checking the edge. */
  setState<T extends object, K extends MachineField & keyof T>(target: T, key: K, value: T[K]): void {
    this.write(target, key, value);
  }

  private write<T extends object, K extends keyof T>(target: T, key: K, value: T[K]): void {
    const obj = target as Writable<T>;
    this.record(undoField, obj, key, obj[key]);
    obj[key] = value;
  }

  /**
   * What a tracked field of `target` was before this input; undefined if the input did not set it.
   * The first record of that field in the log holds it: found by a scan of a short log (what most
   * inputs write), from an index over a long one (made once per input, when first asked).
   */
  valueBefore<T extends object, K extends keyof T & TrackedField>(target: T, key: K): T[K] | undefined {
    const log = this.log;
    if (this.top <= scannedLogSlots) {
      for (let i = 0; i < this.top; i += 4) if (log[i + 1] === target && log[i + 2] === key && log[i] === undoField) return log[i + 3] as T[K];
      return undefined;
    }
    const index = (this.index ??= new Map());
    for (let i = this.indexedTop; i < this.top; i += 4) {
      if (log[i] !== undoField) continue;
      const obj = log[i + 1] as object;
      let fields = index.get(obj);
      if (fields === undefined) index.set(obj, (fields = new Map()));
      if (!fields.has(log[i + 2] as PropertyKey)) fields.set(log[i + 2] as PropertyKey, log[i + 3]);
    }
    this.indexedTop = this.top;
    return index.get(target)?.get(key) as T[K] | undefined;
  }

  mapSet<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): void {
    const m = map as Map<K, V>;
    const old = m.get(key);
    if (old !== undefined || m.has(key)) this.record(undoMapRestore, m, key, old);
    else this.record(undoMapRemove, m, key, undefined);
    m.set(key, value);
  }

  mapDelete<K, V>(map: ReadonlyMap<K, V>, key: K): void {
    const m = map as Map<K, V>;
    if (!m.has(key)) return;
    this.record(undoMapRestore, m, key, m.get(key));
    m.delete(key);
  }

  setAdd<T>(set: ReadonlySet<T>, value: T): void {
    const s = set as Set<T>;
    if (s.has(value)) return;
    this.record(undoSetRemove, s, value, undefined);
    s.add(value);
  }

  setDelete<T>(set: ReadonlySet<T>, value: T): void {
    const s = set as Set<T>;
    if (!s.has(value)) return;
    this.record(undoSetAdd, s, value, undefined);
    s.delete(value);
  }

  /** Registers that `entry` was popped off `heap`: a rollback pushes it back. */
  popped<E>(heap: UndoablePush<E>, entry: E): void {
    this.record(undoPush, heap, entry, undefined);
  }

  /** Registers how to undo a change made outside the methods above. */
  onUndo(undo: () => void): void {
    this.record(undoCall, undo, undefined, undefined);
  }

  /** Undoes every change since the last commit, newest first. */
  rollback(): void {
    const log = this.log;
    for (let i = this.top - 4; i >= 0; i -= 4) {
      const target = log[i + 1];
      const key = log[i + 2];
      switch (log[i] as number) {
        case undoField:
          (target as Record<PropertyKey, unknown>)[key as PropertyKey] = log[i + 3];
          break;
        case undoMapRestore:
          (target as Map<unknown, unknown>).set(key, log[i + 3]);
          break;
        case undoMapRemove:
          (target as Map<unknown, unknown>).delete(key);
          break;
        case undoSetAdd:
          (target as Set<unknown>).add(key);
          break;
        case undoSetRemove:
          (target as Set<unknown>).delete(key);
          break;
        case undoPush:
          (target as UndoablePush<unknown>).push(key);
          break;
        case undoCall:
          (target as () => void)();
          break;
      }
    }
    this.clear();
  }

  /** Keeps every change: the input is complete. */
  commit(): void {
    this.clear();
  }

  private clear(): void {
    if (this.top > keptLogSlots) this.log = [];
    else this.log.fill(undefined, 0, this.top);
    this.top = 0;
    this.index = null;
    this.indexedTop = 0;
  }

  /** Changes recorded since the last commit (for tests). */
  get size(): number {
    return this.top / 4;
  }
}
