import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../peer/backoff.js';
import { parseRetryAfterMs, ServerList } from '../../peer/server-list.js';

const policy = { baseMs: 1_000, capMs: 8_000 };
const half = (): number => 0.5;
const failed = { kind: 'failed', retryAfterMs: null } as const;
const a = 'ws://a/v1/peer';
const b = 'ws://b/v1/peer';
const c = 'ws://c/v1/peer';

describe('ServerList: which authority a peer tries next', () => {
  it('starts with the first server and, when it fails, tries the next one at once', () => {
    const list = new ServerList([a, b], policy, half);
    expect(list.current).toBe(a);
    expect(list.ended(failed, 0)).toEqual({ url: b, index: 1, delayMs: 0, failures: 0 });
    expect(list.current).toBe(b);
  });

  it('backs off per server: when every server has failed, waits for the one free soonest', () => {
    const list = new ServerList([a, b], policy, half);
    list.ended(failed, 0); // a: next try at 750 (1 s nominal, half jitter)
    expect(list.ended(failed, 10)).toEqual({ url: a, index: 0, delayMs: 740, failures: 1 }); // b: free at 760
    expect(list.ended(failed, 750)).toEqual({ url: b, index: 1, delayMs: 10, failures: 1 }); // a's 2nd failure: free at 750 + 1500
    expect(list.ended(failed, 760)).toEqual({ url: a, index: 0, delayMs: 1_490, failures: 2 }); // b: free at 760 + 1500 = 2260
  });

  it('one server: the same URL with the exponential backoff of its own failures, up to the cap', () => {
    const list = new ServerList([a], policy, half);
    const delays = Array.from({ length: 6 }, (_, i) => list.ended(failed, i * 100_000).delayMs);
    expect(delays).toEqual([0, 1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, half, policy)));
    expect(delays.at(-1)).toBe(6_000);
  });

  it('a welcome forgets that server failures; the others keep theirs', () => {
    const list = new ServerList([a, b], policy, half);
    list.ended(failed, 0); // a failed once
    list.ended(failed, 0); // b failed once; back to a after its backoff
    expect(list.current).toBe(a);
    list.joined();
    expect(list.ended(failed, 10_000)).toEqual({ url: b, index: 1, delayMs: 0, failures: 1 });
    expect(list.ended(failed, 10_000)).toEqual({ url: a, index: 0, delayMs: 750, failures: 1 });
  });

  it('a 503 with Retry-After (a standby) waits that long plus up to half again, instead of the growing backoff', () => {
    const list = new ServerList([a], policy, () => 0.2);
    for (let i = 0; i < 5; i++) expect(list.ended({ kind: 'failed', retryAfterMs: 2_000 }, 0).delayMs).toBe(2_200);
    expect(new ServerList([a], policy, () => 0.2).ended({ kind: 'failed', retryAfterMs: 3_600_000 }, 0).delayMs).toBe(66_000);
  });

  it('on ties, list order starting after the server that just failed', () => {
    const list = new ServerList([a, b, c], policy, half);
    expect(list.ended(failed, 0).url).toBe(b);
    expect(list.ended(failed, 0).url).toBe(c);
    expect(list.ended(failed, 0).url).toBe(a); // all failed once at 0: a is free first (750), then b, c
  });

  it('1012 (planned handover): the next server at once, without backoff, whatever the failures so far', () => {
    const list = new ServerList([a, b], policy, half);
    for (let i = 0; i < 4; i++) list.ended(failed, 0); // both have failed twice: backoff of 1.5 s+ ahead
    expect(list.current).toBe(a);
    expect(list.ended({ kind: 'restart' }, 1)).toMatchObject({ url: b, delayMs: 0 });
    // Alone (behind a load balancer): the same URL at once.
    const single = new ServerList([a], policy, half);
    for (let i = 0; i < 4; i++) single.ended(failed, 0);
    expect(single.ended({ kind: 'restart' }, 1)).toMatchObject({ url: a, delayMs: 0 });
  });

  it('refuses an empty list', () => {
    expect(() => new ServerList([], policy, half)).toThrow(/at least one server URL/);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads delta-seconds and HTTP dates; null when absent or unreadable', () => {
    expect(parseRetryAfterMs('2', 0)).toBe(2_000);
    expect(parseRetryAfterMs(' 10 ', 0)).toBe(10_000);
    const now = Date.parse('Sun, 29 Nov 2026 18:00:00 GMT');
    expect(parseRetryAfterMs('Sun, 29 Nov 2026 18:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfterMs('Sun, 29 Nov 2026 17:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfterMs(undefined, 0)).toBeNull();
    expect(parseRetryAfterMs('soon', 0)).toBeNull();
    expect(parseRetryAfterMs('-1', 0)).toBeNull();
  });
});
