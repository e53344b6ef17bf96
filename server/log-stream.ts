import pino, { type DestinationStream } from 'pino';
import { Counter, type Registry } from 'prom-client';

/** Log bytes held while stdout does not keep up; beyond this, lines are dropped, counted and said. */
export const logBufferBytes = 16 * 1024 * 1024;

/** What the report of dropped lines is written with (the authority's logger, once it exists). */
interface Warner {
  warn(fields: object, msg: string): void;
}

/**
 * The authority's JSON log on stdout, written without blocking the event loop (issue 11). On Linux
 * a synchronous write to a full pipe waits, so a log reader that falls behind (a busy supervisor, a
 * paused `kubectl logs`, a pipe into a slow process) would stall every peer. Lines go to a buffer
 * that a write on libuv's thread pool drains in order (pino's own default does that too, but holds
 * without bound and drops nothing it could report); pino flushes what is left on exit and after a
 * fatal line. One stream serves the authority and its leader election, so they never interleave.
 *
 * Bounded: while more than {@link logBufferBytes} wait, new lines are dropped, counted
 * (`dropped`, exported as `taskshard_log_lines_dropped_total`) and said in a warning line once one
 * gets through again; never silently.
 */
export class StdoutLog {
  readonly stream: DestinationStream;
  private droppedLines = 0;
  private reportedLines = 0;
  private writeErrors = 0;
  private reporter: Warner | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: { readonly fd?: number; readonly maxBytes?: number; readonly reportAfterMs?: number } = {}) {
    const reportAfterMs = options.reportAfterMs ?? 1000;
    const dest = pino.destination({ dest: options.fd ?? 1, sync: false, minLength: 0, maxLength: options.maxBytes ?? logBufferBytes });
    dest.on('drop', () => {
      this.droppedLines++;
      this.schedule(reportAfterMs);
    });
    // pino already stops writing on EPIPE (nobody reads stdout any more); any other error is said on stderr, once.
    dest.on('error', (err: Error) => {
      if (this.writeErrors++ === 0) process.stderr.write(`taskshard: cannot write the log to stdout (${err.message}); lines may be lost\n`);
    });
    this.stream = dest;
  }

  /** Lines dropped since start because the buffer was full. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** Exports `taskshard_log_lines_dropped_total` on `registry`. */
  register(registry: Registry): void {
    const dropped = (): number => this.droppedLines;
    let exported = 0;
    new Counter({
      name: 'taskshard_log_lines_dropped_total',
      help: `Log lines dropped because stdout did not keep up (more than ${logBufferBytes / 1024 / 1024} MiB waiting); each drop is also said in a warning line`,
      registers: [registry],
      collect() {
        const now = dropped();
        if (now > exported) this.inc(now - exported);
        exported = now;
      },
    });
  }

  /** Dropped lines are reported through `log` from now on (it writes to this stream itself). */
  reportTo(log: Warner): void {
    this.reporter = log;
    if (this.droppedLines > this.reportedLines) this.schedule(0);
  }

  private schedule(afterMs: number): void {
    if (this.timer !== null || this.reporter === null) return;
    this.timer = setTimeout(() => this.report(afterMs), afterMs);
    this.timer.unref();
  }

  /** Writes the warning; if it was dropped too (the buffer is still full), tries again later. */
  private report(retryMs: number): void {
    this.timer = null;
    const lines = this.droppedLines - this.reportedLines;
    if (lines <= 0 || this.reporter === null) return;
    const before = this.droppedLines;
    this.reporter.warn({ droppedLines: lines, droppedTotal: before }, 'log lines dropped: stdout did not keep up');
    if (this.droppedLines === before) this.reportedLines = before;
    else this.schedule(Math.max(retryMs, 100));
  }
}
