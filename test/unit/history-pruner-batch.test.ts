import { describe, expect, it } from 'vitest';
import type { PruneResult, Retention } from '../../server/core/store-port.js';
import { HistoryPruner } from '../../server/history-pruner.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The pruner's batch size (DESIGN §11: bounded sweeps). A fake store whose batches cost a fixed
 * time per cohort removed, on a fake timer: what each batch asked for and how long it took.
 */
class CostedRetention implements Retention {
  due = 0;
  readonly asked: number[] = [];
  readonly tookMs: number[] = [];
  constructor(
    private readonly timer: FakeClock,
    private readonly msPerCohort: number,
  ) {}
  async pruneHistory(_before: number, maxCohorts: number): Promise<PruneResult> {
    const n = Math.min(this.due, maxCohorts);
    this.due -= n;
    this.asked.push(maxCohorts);
    this.tookMs.push(0.05 + n * this.msPerCohort);
    this.timer.advance(0.05 + n * this.msPerCohort);
    return { removed: { cohorts: n, steps: 4 * n, successes: 0, leases: 0, peers: 0, events: 0 }, removedRows: 5 * n, more: this.due > 0 };
  }
}

function pruner(retention: Retention, timer: FakeClock): HistoryPruner {
  const log = { info: () => undefined, error: () => undefined };
  return new HistoryPruner({ retention, clock: new FakeClock(), elapsed: () => timer.now(), log, historyMs: 1_000, retentionMs: 1_000, gapMs: 0, targetBatchMs: 8 });
}

describe('history pruner batch size', () => {
  it('does not grow on passes with little or nothing due, so the first busy pass stays near the target', async () => {
    const timer = new FakeClock(0);
    const retention = new CostedRetention(timer, 0.2);
    const p = pruner(retention, timer);
    // A quiet hour: many passes, each with nothing or a handful due, all quick.
    for (let i = 0; i < 30; i++) {
      retention.due = i % 3;
      await p.runPass();
    }
    retention.asked.length = 0;
    retention.tookMs.length = 0;
    retention.due = 5_000;
    await p.runPass();
    expect(retention.due).toBe(0);
    // Growing on quick partial batches had taken the batch to maxBatch (1,000 cohorts: 200 ms here).
    expect(retention.asked[0]).toBeLessThanOrEqual(50);
    expect(Math.max(...retention.tookMs)).toBeLessThanOrEqual(8 * 1.5);
  });

  it('shrinks in proportion after a slow batch and settles near the target', async () => {
    const timer = new FakeClock(0);
    const retention = new CostedRetention(timer, 1);
    const p = pruner(retention, timer);
    retention.due = 2_000;
    await p.runPass();
    // The first batch (50 cohorts at 1 ms each) took 50 ms; the next is cut to a quarter, then to the target.
    expect(retention.tookMs[0]).toBeCloseTo(50.05, 5);
    expect(retention.asked[1]).toBe(12);
    const settled = retention.tookMs.slice(3);
    expect(settled.length).toBeGreaterThan(100);
    for (const ms of settled) expect(ms).toBeLessThanOrEqual(8 * 1.5);
    expect(Math.min(...settled.slice(0, -1))).toBeGreaterThanOrEqual(8 / 2);
  });
});
