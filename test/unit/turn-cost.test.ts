import { describe, expect, it } from 'vitest';
import { TurnCost } from '../../server/turn-cost.js';

describe('TurnCost', () => {
  it('is zero until a turn with inputs is measured', () => {
    const cost = new TurnCost();
    expect(cost.msPerInput).toBe(0);
    cost.observe(0, 5);
    expect(cost.msPerInput).toBe(0);
    cost.observe(4, 10);
    expect(cost.msPerInput).toBe(2.5);
  });

  it('rises to a dearer turn at once and falls a fifth of the way towards a cheaper one', () => {
    const cost = new TurnCost();
    cost.observe(2, 4); // 2 ms per input
    cost.observe(1, 12); // dearer: 12 at once
    expect(cost.msPerInput).toBe(12);
    cost.observe(1, 2); // cheaper: 12 - (12 - 2) / 5
    expect(cost.msPerInput).toBeCloseTo(10, 10);
  });

  it('ignores a negative or NaN time', () => {
    const cost = new TurnCost();
    cost.observe(2, 4);
    cost.observe(3, -1);
    cost.observe(3, Number.NaN);
    expect(cost.msPerInput).toBe(2);
  });
});
