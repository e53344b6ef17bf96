/**
 * A token bucket per connection: `ratePerSec` sustained, `burst` at once
 * (frames, or bytes).
 * Time is passed in, so the limiter is tested without sleeping.
 */
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
    const elapsed = Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSec) / 1000);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}
