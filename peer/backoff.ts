/**
 * Reconnect delays: exponential backoff with "equal jitter". Attempt n waits
 * between half and all of `min(capMs, baseMs * 2^n)`, so a fleet of peers that
 * lost the authority at the same instant spreads its reconnects out, while no
 * single peer ever retries faster than half the nominal delay.
 */
export interface BackoffPolicy {
  /** Nominal delay of the first retry, in ms. */
  readonly baseMs: number;
  /** Largest nominal delay, in ms. */
  readonly capMs: number;
}

/** The peer's default: 250 ms, 500 ms, 1 s, 2 s, 4 s, then 5 s (each with jitter). */
export const defaultBackoff: BackoffPolicy = Object.freeze({ baseMs: 250, capMs: 5_000 });

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry).
 * `random` returns a number in [0, 1) (`Math.random` in production, a fixed
 * sequence in tests).
 */
export function backoffDelayMs(attempt: number, random: () => number, policy: BackoffPolicy = defaultBackoff): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const nominal = Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(nominal / 2 + (nominal / 2) * r);
}
