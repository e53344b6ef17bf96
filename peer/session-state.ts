import { defineMachine } from '../shared/state-machine.js';

/**
 * The peer session's connection lifecycle (peer/session.ts).
 *
 * States:
 *   idle          created, not run yet
 *   connecting    a link is opening or open, hello sent, no welcome yet
 *   joined        welcomed by the authority on the current link
 *   reconnecting  the link ended; a reconnect is scheduled (backoff)
 *   ended         the outcome is decided (complete, shared failure, fail-open, interrupted); final
 * Edges:
 *   idle         -> connecting    run()
 *   idle         -> ended         run() with an already aborted signal
 *   connecting   -> joined        welcome
 *   connecting   -> reconnecting  the link ended before a welcome
 *   joined       -> joined        a repeated welcome on the same link (accepted as before)
 *   joined       -> reconnecting  the link ended
 *   reconnecting -> connecting    the backoff timer fired
 *   connecting | joined | reconnecting -> ended
 * Invariants: frames are only acted on while not ended; `step.finished` is sent
 * only while joined (otherwise it waits in the unreported queue for the resume).
 */
export const sessionState = Object.freeze({
  idle: 'idle',
  connecting: 'connecting',
  joined: 'joined',
  reconnecting: 'reconnecting',
  ended: 'ended',
});
export type SessionState = (typeof sessionState)[keyof typeof sessionState];

export const sessionMachine = defineMachine<SessionState>('peer session', sessionState, {
  idle: ['connecting', 'ended'],
  connecting: ['joined', 'reconnecting', 'ended'],
  joined: ['joined', 'reconnecting', 'ended'],
  reconnecting: ['connecting', 'ended'],
  ended: [],
});

/** The session's current state; `to()` moves it along an allowed edge or throws `IllegalTransitionError`. */
export class SessionStateCell {
  private current: SessionState = sessionState.idle;

  get state(): SessionState {
    return this.current;
  }

  get ended(): boolean {
    return this.current === sessionState.ended;
  }

  get joined(): boolean {
    return this.current === sessionState.joined;
  }

  to(next: SessionState): void {
    sessionMachine.check('peer session', this.current, next);
    this.current = next;
  }
}
