/**
 * Time for the authority (DESIGN §11).
 *
 * The machine has two clocks: the wall clock (epoch milliseconds; NTP or an
 * operator can step it by hours) and a monotonic clock (milliseconds from an
 * arbitrary origin; never steps). Every in-process deadline (grace periods,
 * lease ages, straggler backups, sweeps, rate limits, the hello timeout) must
 * follow the monotonic one, or a wall step would end every grace period at
 * once, or postpone them all by hours.
 *
 * So the authority runs on one axis, {@link AnchoredClock}: the wall time read
 * once when the clock is made (at start, just before state is restored),
 * advanced from then on by the monotonic clock only. Times stored in the
 * database are on this axis, which is wall time as of the start plus elapsed
 * time: a wall step during a run moves none of them (nor any deadline), and
 * the next start re-bases the axis on the wall clock, so stored times stay
 * comparable across restarts (a restored grace period starts over from the
 * restore; durations and ages are clamped at zero).
 *
 * The core never reads a clock: the transport passes `clock.now()` into
 * `handle` as `now`.
 */
export interface Clock {
  /** Integer milliseconds on the authority's axis (epoch-based, monotonic within a process). */
  now(): number;
}

/** The machine's two clocks, as an {@link AnchoredClock} reads them (fakes in tests). */
export interface TimeSource {
  /** Milliseconds since the epoch; may jump either way. */
  wallMs(): number;
  /** Milliseconds since an arbitrary origin; never goes back, never jumps. */
  monotonicMs(): number;
}

/** The authority's clock: wall time at construction plus monotonic time elapsed since. */
export class AnchoredClock implements Clock {
  private readonly offsetMs: number;
  private last = -Infinity;

  constructor(private readonly source: TimeSource) {
    this.offsetMs = source.wallMs() - source.monotonicMs();
  }

  now(): number {
    // Integer milliseconds (stored times are integers); never below an earlier reading.
    const t = Math.floor(this.offsetMs + this.source.monotonicMs());
    if (t > this.last) this.last = t;
    return this.last;
  }

  /** How far the wall clock is from this clock now (positive: the wall is ahead), e.g. after a wall step. */
  wallOffsetMs(): number {
    return this.source.wallMs() - this.now();
  }
}
