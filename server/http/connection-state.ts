import { defineMachine } from '../../shared/state-machine.js';

/**
 * The two wire protocols' connection lifecycles, as their adapters track them
 * (the peer's registration, lease and work state live in the core).
 *
 * v1 (`/v1/peer`, peer-socket.ts)
 * States: awaiting-hello, joined (a hello went to the core under this peer id),
 *         closing (bye received; queued frames drain, then close), closed.
 * Edges:
 *   awaiting-hello -> joined | closing | closed
 *   joined         -> closing | closed
 *   closing        -> closed
 * Invariants: frames after hello carry the joined peer id; only a joined
 * connection's close becomes a `disconnected` input.
 *
 * Task Director (`/ws/api/1/:clientId/`, task-director-socket.ts)
 * States: awaiting-init, joined (INIT went to the core), closing (an INIT that
 *         cannot be accepted was answered; the close follows), closed.
 * Edges:
 *   awaiting-init -> joined | closing | closed
 *   joined        -> closed
 *   closing       -> closed
 * Invariants: TASK_COMPLETE reaches the core only when joined; a second INIT is refused.
 */
export const v1ConnectionState = Object.freeze({
  awaitingHello: 'awaiting-hello',
  joined: 'joined',
  closing: 'closing',
  closed: 'closed',
});
export type V1ConnectionState = (typeof v1ConnectionState)[keyof typeof v1ConnectionState];

export const v1ConnectionMachine = defineMachine<V1ConnectionState>('v1 connection', v1ConnectionState, {
  'awaiting-hello': ['joined', 'closing', 'closed'],
  joined: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
});

export const tdConnectionState = Object.freeze({
  awaitingInit: 'awaiting-init',
  joined: 'joined',
  closing: 'closing',
  closed: 'closed',
});
export type TdConnectionState = (typeof tdConnectionState)[keyof typeof tdConnectionState];

export const tdConnectionMachine = defineMachine<TdConnectionState>('Task Director connection', tdConnectionState, {
  'awaiting-init': ['joined', 'closing', 'closed'],
  joined: ['closed'],
  closing: ['closed'],
  closed: [],
});
