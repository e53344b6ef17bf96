import { describe, expect, it } from 'vitest';
import { rowChecker } from '../../server/store/row-columns.js';

const check = rowChecker({
  id: 'text',
  note: 'text?',
  at: 'int',
  ended: 'int?',
  n: 'count',
  attempt: 'positive',
  avg: 'number',
  saved: 'number?',
  on: 'flag',
  status: { oneOf: ['open', 'done'] },
  outcome: { oneOf: ['ok'], nullable: true },
} as const);

const good = { id: 'a', note: null, at: -5, ended: null, n: 0, attempt: 1, avg: 2.5, saved: null, on: 1, status: 'open', outcome: null, extra: 'ignored' };

describe('row column checks', () => {
  it('returns the row itself with flags turned into booleans; checking it again passes', () => {
    const row = { ...good };
    expect(check.check(row, 't[a]')).toBe(row);
    expect(row).toEqual({ ...good, on: true });
    expect(check.check(row, 't[a]')).toEqual({ ...good, on: true });
    expect(check.check({ ...good, on: 0, outcome: 'ok', note: 'x', saved: 3 }, 't[a]')).toMatchObject({ on: false, outcome: 'ok', note: 'x', saved: 3 });
  });

  it.each([
    ['id', null, 'expected text, got null'],
    ['note', 3, 'expected text or null, got 3'],
    ['at', 1.5, 'expected an integer, got 1.5'],
    ['at', '7', 'expected an integer, got "7"'],
    ['ended', 2 ** 60, `expected an integer or null, got ${2 ** 60}`],
    ['n', -1, 'expected an integer ≥ 0, got -1'],
    ['attempt', 0, 'expected an integer ≥ 1, got 0'],
    ['avg', Number.NaN, 'expected a number, got NaN'],
    ['saved', 'x', 'expected a number or null, got "x"'],
    ['on', 2, 'expected 0 or 1, got 2'],
    ['status', 'gone', 'expected one of "open", "done", got "gone"'],
    ['outcome', 'bad', 'expected one of "ok" or null, got "bad"'],
    ['status', undefined, 'expected one of "open", "done", got no such column'],
  ])('names the row and the column: %s = %s', (column, value, message) => {
    expect(() => check.check({ ...good, [column]: value }, 't[a]')).toThrow(`corrupt database: t[a].${column}: ${message}`);
  });

  it('refuses something that is not a row', () => {
    expect(() => check.check(null, 't[?]')).toThrow('corrupt database: t[?]: not a row');
  });
});
