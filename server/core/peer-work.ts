import { defineMachine } from '../../shared/state-machine.js';
import type { Journal } from './journal.js';

/**
 * What a peer is doing, as the core sees it (one tagged union; the connection
 * it is on and its persisted status are separate).
 *
 * States:
 *   idle      nothing to do yet (joined, or its last lease ended)
 *   waiting   told `wait`; not assigned since
 *   running   holds the live lease `leaseId`
 *   orphaned  running step `stepId` under lease `leaseId`, which the authority no
 *             longer counts as live (reported on hello or resume); its completion
 *             may still count
 *   done      told `complete`; final
 * Edges:
 *   idle     -> waiting | running | orphaned | done
 *   waiting  -> idle (dropped, resumed, left) | running | done
 *   running  -> idle     its lease ended (finished, lost, aborted)
 *   orphaned -> idle     it reported the step, was told to stop, or left
 *   orphaned -> orphaned it resumed naming another lost lease
 *   orphaned -> done     its cohort ended while it still ran the step
 * Invariants: `running` iff the peer holds a live lease (and that lease's
 * holder is this peer); a peer holds at most one live lease; only an idle or
 * waiting connected peer of an open cohort can be granted a step.
 */
export const peerWorkKind = Object.freeze({
  idle: 'idle',
  waiting: 'waiting',
  running: 'running',
  orphaned: 'orphaned',
  done: 'done',
});
export type PeerWorkKind = (typeof peerWorkKind)[keyof typeof peerWorkKind];

export type PeerWork =
  | { readonly kind: 'idle' }
  | { readonly kind: 'waiting' }
  | { readonly kind: 'running'; readonly leaseId: string }
  | { readonly kind: 'orphaned'; readonly stepId: string; readonly leaseId: string }
  | { readonly kind: 'done' };

export const peerWorkMachine = defineMachine<PeerWorkKind>('peer work', peerWorkKind, {
  idle: ['waiting', 'running', 'orphaned', 'done'],
  waiting: ['idle', 'running', 'done'],
  running: ['idle'],
  orphaned: ['idle', 'orphaned', 'done'],
  done: [],
});

export const idleWork: PeerWork = Object.freeze({ kind: 'idle' });
export const waitingWork: PeerWork = Object.freeze({ kind: 'waiting' });
export const doneWork: PeerWork = Object.freeze({ kind: 'done' });

/** Changes a peer's work state along an allowed edge (journaled), or throws `IllegalTransitionError`. */
export function transitionWork(journal: Journal, peer: { readonly peerId: string; readonly work: PeerWork }, to: PeerWork): void {
  if (!peerWorkMachine.can(peer.work.kind, to.kind)) peerWorkMachine.check(`work of peer ${peer.peerId}`, peer.work.kind, to.kind);
  journal.setState(peer, 'work', to);
}

/** The live lease the peer holds, if it is running one. */
export function heldLeaseId(work: PeerWork): string | null {
  return work.kind === 'running' ? work.leaseId : null;
}
