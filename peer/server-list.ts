import { backoffDelayMs, type BackoffPolicy } from './backoff.js';

/**
 * The authorities a peer may talk to (`--server A,B`), in the order the user
 * listed them, and which one to try next after a link ends. Pure: time and
 * randomness are inputs.
 *
 * Rules (what a CI engineer expects from a list of servers):
 * - Order is preference: the peer starts with the first server, and a welcome
 *   makes the server that sent it the current one.
 * - After a link to server i ends, the next try goes to the server, in list
 *   order starting after i, that may be tried soonest; so a dead or standby
 *   server never holds the peer up while another one may be active.
 * - Backoff is per server: each failure of a server pushes its next try out by
 *   the exponential backoff of its own failure count (reset by its welcome).
 *   A 503 with `Retry-After` (a standby) waits at least that long, plus up to
 *   half again as jitter, instead of the growing backoff: the standby says how
 *   often it looks at the leader lease.
 * - Close code 1012 (a planned handover): the server is going away and a
 *   standby takes over at once, so the next server is tried at once (with one
 *   server, behind a load balancer, the same URL at once), without backoff.
 */

/** How a link ended, as far as choosing the next server goes. */
export type LinkEndKind =
  /** Could not connect, the upgrade was refused with a retryable status, or the link dropped. */
  | { readonly kind: 'failed'; readonly retryAfterMs: number | null }
  /** Closed with 1012 (service restart): a planned handover. */
  | { readonly kind: 'restart' };

export interface NextServer {
  readonly url: string;
  /** 0-based position in the list. */
  readonly index: number;
  readonly delayMs: number;
  /** This server's failures since its last welcome (0 when it has none). */
  readonly failures: number;
}

interface ServerSlot {
  readonly url: string;
  failures: number;
  notBeforeMs: number;
}

/** Longest `Retry-After` a peer honours; a larger value is treated as this (the patience deadline decides anyway). */
const maxRetryAfterMs = 60_000;

export class ServerList {
  private readonly slots: ServerSlot[];
  private currentIndex = 0;

  constructor(
    urls: readonly string[],
    private readonly backoff: BackoffPolicy,
    private readonly random: () => number,
  ) {
    if (urls.length === 0) throw new Error('ServerList: at least one server URL is required');
    this.slots = urls.map((url) => ({ url, failures: 0, notBeforeMs: 0 }));
  }

  get size(): number {
    return this.slots.length;
  }

  get urls(): readonly string[] {
    return this.slots.map((s) => s.url);
  }

  /** The server the current (or next) link goes to. */
  get current(): string {
    return this.slots[this.currentIndex]!.url;
  }

  get index(): number {
    return this.currentIndex;
  }

  /** The current server welcomed this peer: its failures are forgotten. */
  joined(): void {
    const slot = this.slots[this.currentIndex]!;
    slot.failures = 0;
    slot.notBeforeMs = 0;
  }

  /** The link to the current server ended at `nowMs`: records it and makes the next server current. */
  ended(end: LinkEndKind, nowMs: number): NextServer {
    const slot = this.slots[this.currentIndex]!;
    if (end.kind === 'restart') {
      // Going away on purpose: do not count it against the server, and move on at once.
      slot.notBeforeMs = nowMs;
      const index = this.slots.length === 1 ? this.currentIndex : (this.currentIndex + 1) % this.slots.length;
      const next = this.slots[index]!;
      next.notBeforeMs = Math.min(next.notBeforeMs, nowMs);
      this.currentIndex = index;
      return { url: next.url, index, delayMs: 0, failures: next.failures };
    }
    const backoffMs = backoffDelayMs(slot.failures, this.random, this.backoff);
    slot.failures++;
    slot.notBeforeMs =
      nowMs +
      (end.retryAfterMs === null
        ? backoffMs
        : Math.round(Math.min(end.retryAfterMs, maxRetryAfterMs) * (1 + 0.5 * Math.min(Math.max(this.random(), 0), 1))));
    // Soonest first; on a tie, list order starting after the server that just failed.
    let best = -1;
    for (let step = 1; step <= this.slots.length; step++) {
      const index = (this.currentIndex + step) % this.slots.length;
      if (best === -1 || this.slots[index]!.notBeforeMs < this.slots[best]!.notBeforeMs) best = index;
    }
    this.currentIndex = best;
    const next = this.slots[best]!;
    return { url: next.url, index: best, delayMs: Math.max(0, Math.round(next.notBeforeMs - nowMs)), failures: next.failures };
  }
}

/**
 * `Retry-After` in ms: delta-seconds, or an HTTP date (IMF-fixdate) relative
 * to `nowMs` (wall clock); null when absent or unreadable.
 */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  // IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`): Date.parse alone takes "-1" for a year.
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}
