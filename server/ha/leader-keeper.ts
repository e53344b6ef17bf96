import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { LeaderLease, LeaderState } from './leader-lease.js';

/**
 * Timers around the leader lease (the HA layer, not the core: it may keep
 * time). A standby polls until it can take the lease; the active one renews
 * it and, when a renewal says another authority holds a newer term or no
 * renewal succeeded for a whole TTL (by this process's monotonic clock),
 * reports the lease lost so the process stops before it could act as leader.
 */
export interface LeaderTimings {
  /** `--leader-renew`: seconds between renewals (and between a standby's attempts). */
  readonly renewMs: number;
  /** `--leader-ttl`: seconds a lease lasts after a renewal. */
  readonly ttlMs: number;
}

/** Polls until this authority holds the lease; `onStandby` sees who is active after each failed attempt. Rejects when `signal` aborts. */
export async function waitForLeadership(
  lease: LeaderLease,
  timings: LeaderTimings,
  onStandby: (state: LeaderState | null, err: Error | null) => void,
  signal: AbortSignal,
): Promise<number> {
  for (;;) {
    signal.throwIfAborted();
    try {
      const term = await lease.tryAcquire();
      if (term !== null) return term;
      onStandby(await lease.current(), null);
    } catch (err) {
      onStandby(null, err as Error);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, timings.renewMs);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      }, { once: true });
    });
  }
}

/** Renews the held lease every `renewMs`; calls `onLost` once when it is lost. */
export class LeaderKeeper {
  private timer: NodeJS.Timeout | null = null;
  private lastRenewedAt = performance.now();
  private stopped = false;

  constructor(
    private readonly lease: LeaderLease,
    private readonly timings: LeaderTimings,
    private readonly log: FastifyBaseLogger,
    private readonly onLost: (why: string) => void,
  ) {}

  start(): void {
    this.lastRenewedAt = performance.now();
    this.schedule();
  }

  /** Stops renewing (before a release on planned shutdown). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.renew(), this.timings.renewMs);
  }

  private async renew(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    const startedAt = performance.now();
    try {
      if (await this.lease.renew()) {
        this.lastRenewedAt = startedAt;
      } else {
        return this.lose('another authority holds a newer leader term');
      }
    } catch (err) {
      this.log.warn({ err, term: this.lease.term }, 'leader lease renewal failed; retrying');
    }
    if (performance.now() - this.lastRenewedAt >= this.timings.ttlMs) return this.lose(`no renewal succeeded for ${this.timings.ttlMs / 1000} s (the lease TTL)`);
    this.schedule();
  }

  private lose(why: string): void {
    if (this.stopped) return;
    this.stop();
    this.onLost(why);
  }
}
