/**
 * The one way taskshard writes a state machine: a `const` object of states, a
 * table of allowed edges, and a check that throws {@link IllegalTransitionError}
 * on any edge not in the table. Each machine's file lists its states, edges
 * and invariants in its header; test/unit/core-machines.test.ts walks every
 * edge (and every non-edge) of every table.
 */

/** Thrown on an edge not in the table: always a bug in taskshard, never a peer's fault. */
export class IllegalTransitionError extends Error {
  constructor(what: string, from: string, to: string) {
    super(`illegal transition of ${what}: ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export interface Machine<S extends string> {
  /** What the machine describes, for error messages ("step", "lease", ...). */
  readonly name: string;
  readonly states: readonly S[];
  readonly edges: Readonly<Record<S, readonly S[]>>;
  /** Whether `from -> to` is an edge. */
  can(from: S, to: S): boolean;
  /** Throws {@link IllegalTransitionError} unless `from -> to` is an edge; `what` names the instance. */
  check(what: string, from: S, to: S): void;
}

/** Builds a machine from its states object and edge table (every state must have a row). */
export function defineMachine<S extends string>(name: string, states: Readonly<Record<string, S>>, edges: Readonly<Record<S, readonly S[]>>): Machine<S> {
  const list = Object.values(states);
  for (const s of list) if (!(s in edges)) throw new Error(`machine ${name}: state ${s} has no row in the edge table`);
  const allowed = new Map<S, ReadonlySet<S>>(list.map((s) => [s, new Set(edges[s])]));
  return Object.freeze({
    name,
    states: Object.freeze(list),
    edges,
    can: (from: S, to: S) => allowed.get(from)?.has(to) ?? false,
    check(what: string, from: S, to: S) {
      if (!(allowed.get(from)?.has(to) ?? false)) throw new IllegalTransitionError(what, from, to);
    },
  });
}
