/**
 * WebSocket close codes the authority uses. 1xxx are RFC 6455 codes; 4xxx are
 * taskshard's own, mirroring the HTTP status they resemble.
 */
export const closeCodes = Object.freeze({
  /** Peer said `bye`, or the cohort is complete. */
  normal: 1000,
  /** The authority is shutting down; reconnect and resume. */
  goingAway: 1001,
  /** The peer speaks a protocol version this authority does not. */
  protocolError: 1002,
  /** Invalid UTF-8 in a text frame (sent by `ws` itself). */
  invalidPayload: 1007,
  /** Repeated bad frames or a flood past the rate limit. */
  policyViolation: 1008,
  /** A frame larger than the maximum payload. */
  messageTooBig: 1009,
  /** An internal error; the peer may reconnect. */
  internalError: 1011,
  /** Planned handover: this authority restarts and a standby takes over; reconnect at once and resume. */
  serviceRestart: 1012,
  /** The peer's buffered output passed the cap (it stopped reading). */
  tryAgainLater: 1013,
  /** This connection was replaced by a resumed connection of the same peer. */
  superseded: 4000,
  /** Missing or wrong token. */
  unauthorized: 4401,
  /** Another live connection already uses this peer id. */
  duplicatePeer: 4409,
});

export type CloseCode = (typeof closeCodes)[keyof typeof closeCodes];
