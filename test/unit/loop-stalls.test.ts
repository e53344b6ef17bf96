import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LoopStalls, mainThreadSchedstat } from '../../server/loop-stalls.js';

/** A fake monotonic clock and a fake schedstat, moved by the test. */
function fakes(): { now: () => number; stat: () => { runNs: number; waitNs: number } | null; advance: (ms: number, runMs: number, waitMs: number) => void; off: () => void } {
  let at = 1000;
  let runNs = 5e9;
  let waitNs = 1e9;
  let readable = true;
  return {
    now: () => at,
    stat: () => (readable ? { runNs, waitNs } : null),
    advance: (ms, runMs, waitMs) => {
      at += ms;
      runNs += runMs * 1e6;
      waitNs += waitMs * 1e6;
    },
    off: () => void (readable = false),
  };
}

describe('LoopStalls', () => {
  it("keeps the longest stall since the last take, with the main thread's running and waiting time over its period", () => {
    const f = fakes();
    const stalls = new LoopStalls(10, f.now, () => ({ read: f.stat, close: () => undefined }));
    stalls.start();
    f.advance(12, 3, 0);
    stalls.tick(); // 2 ms late
    f.advance(67, 15, 50);
    stalls.tick(); // 57 ms late: mostly waiting for a CPU, the machine's
    f.advance(40, 38, 1);
    stalls.tick(); // 30 ms late: shorter, so not kept
    expect(stalls.take()).toEqual({ ms: 57, runningMs: 15, waitingMs: 50 });
    // Each take starts over.
    f.advance(10, 1, 0);
    stalls.tick();
    expect(stalls.take()).toEqual({ ms: 0, runningMs: null, waitingMs: null });
    f.advance(60, 55, 2);
    stalls.tick(); // 50 ms late, the authority's own work
    expect(stalls.take()).toEqual({ ms: 50, runningMs: 55, waitingMs: 2 });
    stalls.stop();
  });

  it('without schedstat it still measures the stall and says running and waiting are unknown', () => {
    const f = fakes();
    f.off();
    const stalls = new LoopStalls(10, f.now, () => ({ read: f.stat, close: () => undefined }));
    stalls.start();
    f.advance(45, 40, 0);
    stalls.tick();
    expect(stalls.detailed).toBe(false);
    expect(stalls.take()).toEqual({ ms: 35, runningMs: null, waitingMs: null });
    stalls.stop();
  });

  it('exports the longest stall per scrape as taskshard_event_loop_longest_stall_seconds, and starts over after each', async () => {
    const f = fakes();
    const stalls = new LoopStalls(10, f.now, () => ({ read: f.stat, close: () => undefined }));
    const registry = new Registry();
    stalls.register(registry);
    stalls.start();
    f.advance(30, 12, 7);
    stalls.tick();
    const text = await registry.metrics();
    expect(text).toContain('taskshard_event_loop_longest_stall_seconds{part="stall"} 0.02');
    expect(text).toContain('taskshard_event_loop_longest_stall_seconds{part="running"} 0.012');
    expect(text).toContain('taskshard_event_loop_longest_stall_seconds{part="waiting"} 0.007');
    expect(await registry.metrics()).toContain('taskshard_event_loop_longest_stall_seconds{part="stall"} 0');
    stalls.stop();
  });

  it.runIf(process.platform === 'linux')("reads this thread's schedstat on Linux, again and again from one open file: time on a CPU only grows", () => {
    const reader = mainThreadSchedstat();
    const a = reader.read();
    let x = 0;
    for (let i = 0; i < 1e6; i++) x += i;
    const b = reader.read();
    reader.close();
    expect(reader.read()).toBeNull();
    expect(x).toBeGreaterThan(0);
    expect(a).not.toBeNull();
    expect(b!.runNs).toBeGreaterThan(a!.runNs);
    expect(b!.waitNs).toBeGreaterThanOrEqual(a!.waitNs);
  });
});
