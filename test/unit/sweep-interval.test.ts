import { describe, expect, it } from 'vitest';
import { sweepIntervalMsFor } from '../../server/app.js';

describe('the retention sweep interval the server configures', () => {
  it('is a minute with windows of hours, a twentieth of the shortest window when sooner, and at least a second', () => {
    expect(sweepIntervalMsFor({ retentionHours: 24, memoTtlHours: 24, idleCohortHours: 1 })).toBe(60_000);
    expect(sweepIntervalMsFor({ retentionHours: 24, memoTtlHours: 24, idleCohortHours: 10 / 60 })).toBe(30_000);
    // The day bench's 20 s windows: swept every second, so memory holds 20 s of cohorts, not 80 s.
    expect(sweepIntervalMsFor({ retentionHours: 20 / 3600, memoTtlHours: 20 / 3600, idleCohortHours: 20 / 3600 })).toBe(1_000);
    expect(sweepIntervalMsFor({ retentionHours: 0, memoTtlHours: 24, idleCohortHours: 1 })).toBe(1_000);
  });
});
