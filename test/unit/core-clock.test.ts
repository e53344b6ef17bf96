import { describe, expect, it } from 'vitest';
import { systemClock } from '../../server/app.js';
import { parseServerConfig } from '../../server/config.js';
import { AnchoredClock, type TimeSource } from '../../server/core/clock.js';
import { ConnectionGuard } from '../../server/http/connection-guard.js';

/** Issue 11, item 4: the clocks the authority runs on (the grace, lease-age and straggler cases are in test/integration/monotonic-time.test.ts). */
class FakeTime implements TimeSource {
  wall = 1_700_000_000_000;
  mono = 0;
  wallMs(): number {
    return this.wall;
  }
  monotonicMs(): number {
    return this.mono;
  }
}

const hour = 3600_000;

describe('the authority clock', () => {
  it('buildApp runs on an anchored clock by default: integer milliseconds near the wall clock, never going back', () => {
    const clock = systemClock();
    expect(clock).toBeInstanceOf(AnchoredClock);
    const first = clock.now();
    expect(Number.isInteger(first)).toBe(true);
    expect(Math.abs(first - Date.now())).toBeLessThan(1000);
    let last = first;
    for (let i = 0; i < 1000; i++) {
      const t = clock.now();
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });

  it('rate limits follow it: a wall step of an hour neither refills the bucket nor starves it', () => {
    const time = new FakeTime();
    const clock = new AnchoredClock(time);
    const config = parseServerConfig({ rateLimitPerSec: 10, rateLimitBurst: 5 });
    const guard = new ConnectionGuard(config, clock.now());
    try {
      const frame = Buffer.from('{}');
      for (let i = 0; i < 5; i++) expect(guard.admit(frame, clock.now())).toBeNull();
      expect(guard.admit(frame, clock.now())).toMatchObject({ result: 'rate_limited', code: 'RATE_LIMITED' });
      time.wall += hour; // on the wall clock, an hour of tokens
      expect(guard.admit(frame, clock.now())).toMatchObject({ result: 'rate_limited' });
      time.wall -= 2 * hour;
      time.mono += 100; // 100 ms really passed: one token
      expect(guard.admit(frame, clock.now())).toBeNull();
      expect(guard.admit(frame, clock.now())).toMatchObject({ result: 'rate_limited' });
    } finally {
      guard.stopHelloDeadline();
    }
  });
});
