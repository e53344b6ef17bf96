import { defineMachine } from '../../shared/state-machine.js';

/**
 * The two wire protocols' connection lifecycles, as their adapters track them
 * (the peer's registration, lease and work state live in the core).
 *
 * Whether a peer joined on a connection is the core's to know (its connection
 * index); these are only the wire handshakes.
 *
 * v1 (`/v1/peer`, peer-socket.ts)
 * States: awaiting-hello, hello-sent (a hello passed the frame checks and went to
 *         the core), closing (bye received; queued frames drain, then close), closed.
 * Edges:
 *   awaiting-hello -> hello-sent | closing | closed
 *   hello-sent     -> hello-sent (another hello: the core refuses ALREADY_JOINED, or accepts it
 *                     after a refused one) | closing | closed
 *   closing        -> closed
 *
 * Task Director (`/ws/api/1/:clientId/`, task-director-socket.ts)
 * States: awaiting-init, init-sent (the first INIT went to the core; its schema id is
 *         echoed in every frame), closing (an INIT that cannot be accepted was answered;
 *         the close follows), closed.
 * Edges:
 *   awaiting-init -> init-sent | closing | closed
 *   init-sent     -> closed
 *   closing       -> closed
 */
export const v1ConnectionState = Object.freeze({
  awaitingHello: 'awaiting-hello',
  helloSent: 'hello-sent',
  closing: 'closing',
  closed: 'closed',
});
export type V1ConnectionState = (typeof v1ConnectionState)[keyof typeof v1ConnectionState];

export const v1ConnectionMachine = defineMachine<V1ConnectionState>('v1 connection', v1ConnectionState, {
  'awaiting-hello': ['hello-sent', 'closing', 'closed'],
  'hello-sent': ['hello-sent', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
});

export const tdConnectionState = Object.freeze({
  awaitingInit: 'awaiting-init',
  initSent: 'init-sent',
  closing: 'closing',
  closed: 'closed',
});
export type TdConnectionState = (typeof tdConnectionState)[keyof typeof tdConnectionState];

export const tdConnectionMachine = defineMachine<TdConnectionState>('Task Director connection', tdConnectionState, {
  'awaiting-init': ['init-sent', 'closing', 'closed'],
  'init-sent': ['closed'],
  closing: ['closed'],
  closed: [],
});
