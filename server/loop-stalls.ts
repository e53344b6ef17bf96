import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/**
 * How long the event loop stalled, and whose time it was (issue 11: the longest
 * block). A timer every `intervalMs` measures how late it fires, as node's own
 * event-loop delay does; for the latest period it also reads the main thread's
 * scheduler statistics (Linux `/proc/self/task/<tid>/schedstat`: nanoseconds on
 * a CPU, nanoseconds runnable but waiting for one). A stall of 57 ms made of
 * 50 ms running is the authority's own work; one made of 15 ms running and
 * 40 ms waiting is the machine, which did not give the thread a core.
 *
 * `take()` hands over the longest stall since the last `take()` and starts
 * over, as prom-client does with the event loop's maximum on every scrape.
 */
export interface Stall {
  /** How late the timer fired, ms. */
  readonly ms: number;
  /** Over the timer's period (the stall plus one interval): the main thread on a CPU, ms; null where schedstat is not readable. */
  readonly runningMs: number | null;
  /** Over the same period: runnable, waiting for a CPU, ms; null where schedstat is not readable. */
  readonly waitingMs: number | null;
}

interface SchedStat {
  readonly runNs: number;
  readonly waitNs: number;
}

const none: Stall = { ms: 0, runningMs: null, waitingMs: null };

/** Reads scheduler statistics again and again; `close` lets go of what it holds. */
export interface SchedstatReader {
  read(): SchedStat | null;
  close(): void;
}

/**
 * The main thread's scheduler statistics (its thread id is the process id); `read` gives null off
 * Linux. The file stays open and is read again at position 0 into one buffer: `readFileSync` of a
 * /proc file (size 0) opens, stats and allocates 16 KB per call, 86 µs against about 5 µs.
 */
export function mainThreadSchedstat(): SchedstatReader {
  let fd: number | null = null;
  try {
    fd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
  } catch {
    // Not Linux (or no /proc): running and waiting times are unknown, said as null.
  }
  const buf = Buffer.alloc(128);
  const close = (): void => {
    if (fd !== null) closeSync(fd);
    fd = null;
  };
  return {
    read: () => {
      if (fd === null) return null;
      try {
        const text = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0));
        const first = text.indexOf(' ');
        const runNs = Number(text.slice(0, first));
        const waitNs = Number(text.slice(first + 1, text.indexOf(' ', first + 1)));
        return Number.isFinite(runNs) && Number.isFinite(waitNs) ? { runNs, waitNs } : null;
      } catch {
        close();
        return null;
      }
    },
    close,
  };
}

export class LoopStalls {
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  private lastStat: SchedStat | null = null;
  private longest: Stall = none;

  private reader: SchedstatReader | null = null;

  /** `openSchedstat` defaults to the main thread's, opened by `start` and closed by `stop`. */
  constructor(
    private readonly intervalMs = 10,
    private readonly now: () => number = () => performance.now(),
    private readonly openSchedstat: () => SchedstatReader = mainThreadSchedstat,
  ) {}

  private stat(): SchedStat | null {
    return this.reader?.read() ?? null;
  }

  /** Whether running and waiting times are known here (Linux). */
  get detailed(): boolean {
    return this.stat() !== null;
  }

  start(): void {
    if (this.timer !== null) return;
    this.reader = this.openSchedstat();
    this.lastAt = this.now();
    this.lastStat = this.stat();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.reader?.close();
    this.reader = null;
  }

  /** One timer period ended (the interval's callback; tests call it with fake clocks). */
  tick(): void {
    const at = this.now();
    const stat = this.stat();
    const ms = at - this.lastAt - this.intervalMs;
    if (ms > this.longest.ms) {
      const before = this.lastStat;
      const known = stat !== null && before !== null;
      this.longest = {
        ms,
        runningMs: known ? (stat.runNs - before.runNs) / 1e6 : null,
        waitingMs: known ? (stat.waitNs - before.waitNs) / 1e6 : null,
      };
    }
    this.lastAt = at;
    this.lastStat = stat;
  }

  /** The longest stall since the last call, and start over. */
  take(): Stall {
    const longest = this.longest;
    this.longest = none;
    return longest;
  }

  /**
   * `taskshard_event_loop_longest_stall_seconds{part}` on `registry`: `stall`, `running` and
   * `waiting` of the longest stall since the previous scrape (each scrape starts over).
   */
  register(registry: Registry): void {
    const take = (): Stall => this.take();
    new Gauge({
      name: 'taskshard_event_loop_longest_stall_seconds',
      help:
        'The longest event-loop stall since the previous scrape (part="stall": how late a 10 ms timer fired), and over that timer period the main thread ' +
        'on a CPU (part="running": the authority\'s own work) and runnable but waiting for a CPU (part="waiting": the machine); Linux only for the last two',
      labelNames: ['part'],
      registers: [registry],
      collect() {
        const s = take();
        this.set({ part: 'stall' }, s.ms / 1000);
        if (s.runningMs !== null) this.set({ part: 'running' }, s.runningMs / 1000);
        if (s.waitingMs !== null) this.set({ part: 'waiting' }, s.waitingMs / 1000);
      },
    });
  }
}
