import { describe, expect, it } from 'vitest';
import type { Write } from '../../server/core/records.js';
import { Metrics } from '../../server/http/metrics.js';

/** `taskshard_store_rows_written_total{table}`: tallied per commit, handed to prom-client when scraped. */
describe('rows written by table', () => {
  it('counts each row write by its table, not an event stored on its lease row, and accumulates across commits', async () => {
    const metrics = new Metrics(() => ({ peersConnected: 0, cohortsOpen: 0, leasesLive: 0 }));
    const event = (leaseId?: string): Write => ({ table: 'event', row: { cohortId: 'c1', kind: 'step.succeeded', atMs: 1, ...(leaseId ? { leaseId } : {}) } }) as unknown as Write;
    const batch: Write[] = [
      { table: 'memo.delete', memoKey: 'a' },
      { table: 'memo.delete', memoKey: 'b' },
      { table: 'duration', row: { key: 'k', avgMs: 1, samples: 1 } } as unknown as Write,
      event('l_1'),
      event(),
    ];
    metrics.observeWrites(batch, 10);
    const rows = async (): Promise<Record<string, number>> => {
      const values = (await metrics.registry.getSingleMetric('taskshard_store_rows_written_total')!.get()).values;
      return Object.fromEntries(values.map((v) => [String(v.labels.table), v.value]));
    };
    expect(await rows()).toEqual({ 'memo.delete': 2, duration: 1, event: 1 });
    metrics.observeWrites(batch.slice(0, 1), 11);
    expect(await rows()).toEqual({ 'memo.delete': 3, duration: 1, event: 1 });
  });
});
