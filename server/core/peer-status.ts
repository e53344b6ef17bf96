import { defineMachine } from '../../shared/state-machine.js';
import type { Journal } from './journal.js';
import type { PeerRecord, PeerStatus } from './records.js';
import { peerStatus } from './records.js';

/**
 * A peer registration's persisted lifecycle (DESIGN §7).
 *
 * States: connected, disconnected, gone, left (the `peerStatus` object in records.ts).
 * Edges:
 *   connected    -> disconnected  its socket dropped (grace starts), or the authority restarted
 *   connected    -> left          bye, or its socket closed after `complete`
 *   disconnected -> connected     resumed with its token within grace
 *   disconnected -> gone          grace expired (`now >= graceEndsAtMs`)
 * gone and left are final: the same peer id saying hello again is a new registration.
 * Invariants: `graceEndsAtMs` is set iff disconnected, and a disconnected peer
 * is in the scheduler's grace index; a connected peer has a connection.
 */
export const peerMachine = defineMachine<PeerStatus>('peer', peerStatus, {
  connected: ['disconnected', 'left'],
  disconnected: ['connected', 'gone'],
  gone: [],
  left: [],
});

/** Moves a peer registration along an allowed edge (journaled), or throws `IllegalTransitionError`. */
export function transitionPeer(journal: Journal, peer: PeerRecord, to: PeerStatus): void {
  if (!peerMachine.can(peer.status, to)) peerMachine.check(`peer ${peer.peerId}`, peer.status, to);
  journal.setState(peer, 'status', to);
}
