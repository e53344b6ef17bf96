/**
 * Token buckets: `ratePerSec` sustained, `burst` at once (frames, or bytes).
 * Time is passed in, so the limiter is tested without sleeping.
 *
 * A connection keeps its two buckets as plain fields (connection-guard.ts,
 * one object per connection: issue #17's memory per idle peer) and refills
 * them with {@link refilledTokens}; {@link TokenBucket} is the same rule as
 * an object of its own.
 */

/** The tokens a bucket holds after `elapsedMs` (never negative time, never above `burst`). */
export function refilledTokens(tokens: number, elapsedMs: number, ratePerSec: number, burst: number): number {
  return Math.min(burst, tokens + (Math.max(0, elapsedMs) * ratePerSec) / 1000);
}

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /**
   * Takes `cost` tokens (one frame, or a frame's bytes); false, taking nothing,
   * when fewer are left.
   */
  take(nowMs: number, cost = 1): boolean {
    this.tokens = refilledTokens(this.tokens, nowMs - this.lastMs, this.ratePerSec, this.burst);
    this.lastMs = nowMs;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}
