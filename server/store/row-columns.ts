/**
 * Rows read back from the database are checked column by column against a
 * small spec (text, integer, flag, one of some words; nullable or not), the
 * same rules the zod row schemas had, but without zod's per-row cost: a
 * start-up reads every open and retained cohort's rows (about 40,000 for
 * 2,500 cohorts of 3 peers × 4 steps), and zod's object parsing of them,
 * not yet warmed up, took about half a second of a restart (issue 11).
 * JSON columns are still parsed with zod (row-schemas.ts).
 */

/** What one column may hold, as the database driver returns it. */
export type ColumnKind =
  | 'text'
  | 'text?'
  | 'int'
  | 'int?'
  /** An integer ≥ 0. */
  | 'count'
  /** An integer ≥ 1. */
  | 'positive'
  | 'number'
  | 'number?'
  /** 0 or 1, read as a boolean. */
  | 'flag'
  | { readonly oneOf: readonly string[]; readonly nullable?: boolean };

export type ColumnSpec = Readonly<Record<string, ColumnKind>>;

type ValueOf<K> = K extends 'text'
  ? string
  : K extends 'text?'
    ? string | null
    : K extends 'int' | 'count' | 'positive' | 'number'
      ? number
      : K extends 'int?' | 'number?'
        ? number | null
        : K extends 'flag'
          ? boolean
          : K extends { readonly oneOf: readonly (infer E)[]; readonly nullable: true }
            ? E | null
            : K extends { readonly oneOf: readonly (infer E)[] }
              ? E
              : never;

/** The checked row: each column of the spec with its value's type (flags as booleans). */
export type RowOf<S extends ColumnSpec> = { -readonly [C in keyof S]: ValueOf<S[C]> };

/** A compiled row check; `check` throws an error naming `where` and the column. */
export interface RowChecker<T> {
  readonly columns: ColumnSpec;
  check(raw: unknown, where: string): T;
}

const invalid = Symbol('invalid');

function valueOf(kind: ColumnKind, v: unknown): unknown {
  switch (kind) {
    case 'text':
      return typeof v === 'string' ? v : invalid;
    case 'text?':
      return v === null || typeof v === 'string' ? v : invalid;
    case 'int':
      return Number.isSafeInteger(v) ? v : invalid;
    case 'int?':
      return v === null || Number.isSafeInteger(v) ? v : invalid;
    case 'count':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? v : invalid;
    case 'positive':
      return Number.isSafeInteger(v) && (v as number) >= 1 ? v : invalid;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? v : invalid;
    case 'number?':
      return v === null || (typeof v === 'number' && Number.isFinite(v)) ? v : invalid;
    case 'flag':
      // A boolean: this row was checked before (flags are turned into booleans in place).
      return v === 1 || v === true ? true : v === 0 || v === false ? false : invalid;
    default:
      if (v === null) return kind.nullable === true ? null : invalid;
      return typeof v === 'string' && kind.oneOf.includes(v) ? v : invalid;
  }
}

function expected(kind: ColumnKind): string {
  switch (kind) {
    case 'text':
      return 'text';
    case 'text?':
      return 'text or null';
    case 'int':
      return 'an integer';
    case 'int?':
      return 'an integer or null';
    case 'count':
      return 'an integer ≥ 0';
    case 'positive':
      return 'an integer ≥ 1';
    case 'number':
      return 'a number';
    case 'number?':
      return 'a number or null';
    case 'flag':
      return '0 or 1';
    default:
      return `one of ${kind.oneOf.map((w) => `"${w}"`).join(', ')}${kind.nullable === true ? ' or null' : ''}`;
  }
}

function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === undefined) return 'no such column';
  return typeof v === 'bigint' ? `${v}n` : String(v);
}

/**
 * Compiles a row check for `columns`. The row object the driver returned is
 * checked and returned as it is, flag columns turned into booleans in place
 * (no copy per row: a start-up reads tens of thousands); columns beyond the
 * spec stay on it, untyped.
 */
export function rowChecker<S extends ColumnSpec>(columns: S): RowChecker<RowOf<S>> {
  const entries = Object.entries(columns);
  return {
    columns,
    check(raw, where) {
      if (typeof raw !== 'object' || raw === null) throw new Error(`corrupt database: ${where}: not a row`);
      const row = raw as Record<string, unknown>;
      for (const [column, kind] of entries) {
        const value = valueOf(kind, row[column]);
        if (value === invalid) throw new Error(`corrupt database: ${where}.${column}: expected ${expected(kind)}, got ${shown(row[column])}`);
        if (kind === 'flag') row[column] = value;
      }
      return row as RowOf<S>;
    },
  };
}
