/** Where time comes from. The core never reads it: the transport passes `clock.now()` into `handle`. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}
