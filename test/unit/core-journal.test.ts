import { describe, expect, it } from 'vitest';
import { BinaryHeap } from '../../server/core/binary-heap.js';
import { InputSet } from '../../server/core/input-set.js';
import { Journal } from '../../server/core/journal.js';
import type { LeaseRecord, StepRecord } from '../../server/core/records.js';
import { pendingStepRecord } from '../../server/core/records.js';
import { leaseSnapshot, stepSnapshot } from '../../server/core/row-snapshots.js';

/**
 * The journal's typed undo log (issue 17: records in one reused array, not a closure per change):
 * every kind of change is undone exactly, newest first, after any number of inputs that committed;
 * `valueBefore` gives a tracked field's value before the input from a short log (scanned) and from a
 * long one (indexed once). And the per-input sets and row copies the core uses instead of `Set`s and
 * `Object.assign`.
 */

interface Subject {
  status: string;
  attempts: number;
  note: string;
}

describe('the journal undoes every kind of change, newest first', () => {
  it('fields, map sets and deletes, set adds and deletes, heap pops and registered undos', () => {
    const j = new Journal();
    const subject: Subject = { status: 'pending', attempts: 0, note: 'a' };
    const map = new Map<string, number>([['kept', 1], ['gone', 2]]);
    const set = new Set<string>(['x']);
    const heap = new BinaryHeap<number>((a, b) => a < b);
    for (const n of [5, 3, 8]) heap.push(n);
    const calls: string[] = [];
    // A committed input first: its changes stay, and its records do not come back in a later rollback.
    j.set(subject, { note: 'b' });
    j.commit();
    j.setState(subject, 'status', 'leased');
    j.field(subject, 'attempts', 1);
    j.set(subject, { attempts: 2, note: 'c' });
    j.mapSet(map, 'kept', 10);
    j.mapSet(map, 'new', 3);
    j.mapDelete(map, 'gone');
    j.mapDelete(map, 'never');
    j.setAdd(set, 'y');
    j.setDelete(set, 'x');
    expect(heap.pop(j)).toBe(3);
    j.onUndo(() => calls.push('undone'));
    expect(j.size).toBe(11);
    j.rollback();
    expect(subject).toEqual({ status: 'pending', attempts: 0, note: 'b' });
    expect([...map]).toEqual(expect.arrayContaining([['kept', 1], ['gone', 2]]));
    expect(map.size).toBe(2);
    expect([...set]).toEqual(['x']);
    expect([heap.pop(null), heap.pop(null), heap.pop(null)]).toEqual([3, 5, 8]);
    expect(calls).toEqual(['undone']);
    expect(j.size).toBe(0);
  });

  it('a map entry set twice in one input comes back as it was before the input', () => {
    const j = new Journal();
    const map = new Map<string, number>([['k', 1]]);
    j.mapSet(map, 'k', 2);
    j.mapDelete(map, 'k');
    j.mapSet(map, 'k', 3);
    j.rollback();
    expect([...map]).toEqual([['k', 1]]);
  });
});

describe('valueBefore', () => {
  it('is the first value of the input (not of an earlier one), undefined for a field the input did not set', () => {
    const j = new Journal();
    const subject: Subject = { status: 'pending', attempts: 0, note: 'a' };
    j.field(subject, 'attempts', 4);
    j.commit();
    expect(j.valueBefore(subject, 'attempts')).toBeUndefined();
    j.field(subject, 'attempts', 5);
    j.field(subject, 'attempts', 6);
    expect(j.valueBefore(subject, 'attempts')).toBe(4);
    expect(j.valueBefore(subject, 'status')).toBeUndefined();
  });

  it('gives the same answers from a long log as from a short one, writes after the first question included', () => {
    const j = new Journal();
    const subjects: Subject[] = Array.from({ length: 200 }, (_, i) => ({ status: `s${i}`, attempts: i, note: '' }));
    for (const s of subjects) j.setState(s, 'status', 'x');
    for (const s of subjects) j.field(s, 'attempts', s.attempts + 1000);
    expect(j.size).toBe(400);
    expect(j.valueBefore(subjects[7]!, 'status')).toBe('s7');
    // Written after the log was indexed: still found, and still the first value.
    const late: Subject = { status: 'late', attempts: 1, note: '' };
    j.setState(late, 'status', 'y');
    j.setState(subjects[7]!, 'status', 'z');
    expect(j.valueBefore(late, 'status')).toBe('late');
    expect(j.valueBefore(subjects[7]!, 'status')).toBe('s7');
    expect(subjects.map((s) => j.valueBefore(s, 'attempts'))).toEqual(subjects.map((_, i) => i));
    j.rollback();
    expect(subjects.map((s) => s.status)).toEqual(subjects.map((_, i) => `s${i}`));
    expect(late.status).toBe('late');
    expect(j.valueBefore(late, 'status')).toBeUndefined();
  });
});

describe('InputSet', () => {
  it('keeps insertion order, each member once, below and above its linear limit, and empties for the next input', () => {
    for (const n of [3, 8, 9, 50]) {
      const set = new InputSet<object>();
      const items = Array.from({ length: n }, () => ({}));
      for (const item of [...items, ...items]) set.add(item);
      expect(set.size).toBe(n);
      expect(set.toArray()).toEqual(items);
      expect(items.every((item) => set.has(item))).toBe(true);
      expect(set.has({})).toBe(false);
      set.clear();
      expect(set.size).toBe(0);
      expect(set.has(items[0]!)).toBe(false);
      set.add(items[1]!);
      expect(set.toArray()).toEqual([items[1]]);
    }
  });

  it('a member added while a loop reads it by index is reached by that loop', () => {
    const set = new InputSet<number>();
    set.add(1);
    const seen: number[] = [];
    for (let i = 0; i < set.size; i++) {
      seen.push(set.at(i));
      if (set.at(i) < 4) set.add(set.at(i) + 1);
    }
    expect(seen).toEqual([1, 2, 3, 4]);
  });
});

describe('row snapshots', () => {
  it('copy every field of the live record, frozen, and keep an optional field only where the record has it', () => {
    const step: StepRecord = { ...pendingStepRecord('c1', 's1'), failedOn: ['p1'] };
    const copy = stepSnapshot(step);
    expect(copy).toStrictEqual(Object.assign({}, step));
    expect(Object.isFrozen(copy)).toBe(true);
    expect(copy).not.toBe(step);
    expect('unsharedCause' in copy).toBe(false);
    const unshared: StepRecord = { ...step, status: 'unshared', unsharedCause: { kind: 'need-unshared', need: 's0' } };
    expect(stepSnapshot(unshared)).toStrictEqual(Object.assign({}, unshared));
    const lease: LeaseRecord = { leaseId: 'l1', cohortId: 'c1', stepId: 's1', peerId: 'p1', attempt: 1, backup: false, startedAtMs: 5, endedAtMs: null, end: null };
    expect(leaseSnapshot(lease)).toStrictEqual(Object.assign({}, lease));
    expect(Object.isFrozen(leaseSnapshot(lease))).toBe(true);
  });
});
