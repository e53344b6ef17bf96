import { describe, expect, it } from 'vitest';
import type { LeaseEnd } from '../../server/core/causes.js';
import { cohortMachine, transitionCohort } from '../../server/core/cohort-status.js';
import { Journal } from '../../server/core/journal.js';
import { leaseMachine, leaseStateOf, transitionLease, type LeaseState } from '../../server/core/lease-state.js';
import { peerMachine, transitionPeer } from '../../server/core/peer-status.js';
import { peerWorkMachine, transitionWork, type PeerWork, type PeerWorkKind } from '../../server/core/peer-work.js';
import type { CohortRecord, LeaseRecord, PeerRecord } from '../../server/core/records.js';
import { stepMachine, transitionStep } from '../../server/core/step-status.js';
import { tdConnectionMachine, v1ConnectionMachine } from '../../server/http/connection-state.js';
import { sessionMachine, SessionStateCell, type SessionState } from '../../peer/session-state.js';
import { IllegalTransitionError, type Machine } from '../../shared/state-machine.js';

/**
 * Every edge of every state machine's table is taken through its real
 * `transition()` (and undone through the journal where the core's state
 * lives), and every pair not in the table throws IllegalTransitionError and
 * changes nothing.
 */

const machines: Machine<string>[] = [stepMachine, cohortMachine, leaseMachine, peerMachine, peerWorkMachine, v1ConnectionMachine, tdConnectionMachine, sessionMachine];

function pairs<S extends string>(m: Machine<S>): { from: S; to: S; edge: boolean }[] {
  return m.states.flatMap((from) => m.states.map((to) => ({ from, to, edge: m.edges[from].includes(to) })));
}

describe('state machine tables', () => {
  for (const m of machines) {
    it(`${m.name}: check() allows exactly the table's edges`, () => {
      let edges = 0;
      for (const { from, to, edge } of pairs(m)) {
        expect(m.can(from, to), `${m.name} ${from} -> ${to}`).toBe(edge);
        if (edge) {
          edges++;
          expect(() => m.check('x', from, to)).not.toThrow();
        } else {
          expect(() => m.check('x', from, to)).toThrow(new IllegalTransitionError('x', from, to));
        }
      }
      expect(edges).toBeGreaterThan(0);
    });
  }
});

/** Takes each pair through `apply` on a fresh subject in `from`: edges land in `to` and roll back; non-edges throw and change nothing. */
function walk<S extends string, T>(m: Machine<S>, make: (from: S) => T, stateOf: (t: T) => S, apply: (j: Journal, t: T, to: S) => void): void {
  for (const { from, to, edge } of pairs(m)) {
    const j = new Journal();
    const subject = make(from);
    if (edge) {
      apply(j, subject, to);
      expect(stateOf(subject), `${m.name} ${from} -> ${to}`).toBe(to);
      j.rollback();
      expect(stateOf(subject), `${m.name} ${from} -> ${to} undone`).toBe(from);
    } else {
      expect(() => apply(j, subject, to), `${m.name} ${from} -> ${to}`).toThrow(IllegalTransitionError);
      expect(stateOf(subject)).toBe(from);
    }
  }
}

describe('transition() of each machine walks every edge', () => {
  it('step', () => {
    walk(stepMachine, (status) => ({ cohortId: 'c', stepId: 's', status }), (s) => s.status, (j, s, to) => transitionStep(j, s, to));
  });

  it('cohort', () => {
    walk(cohortMachine, (status) => ({ cohortId: 'c', status }) as CohortRecord, (c) => c.status, (j, c, to) => transitionCohort(j, c, to));
  });

  it('peer', () => {
    walk(peerMachine, (status) => ({ peerId: 'p', status }) as PeerRecord, (p) => p.status, (j, p, to) => transitionPeer(j, p, to));
  });

  it('lease', () => {
    const ends: Record<Exclude<LeaseState, 'live'>, LeaseEnd> = {
      succeeded: { kind: 'succeeded' },
      failed: { kind: 'failed', exitCode: 2 },
      lost: { kind: 'lost', why: 'grace-expired' },
      aborted: { kind: 'aborted', why: 'superseded' },
    };
    const make = (state: LeaseState): LeaseRecord =>
      ({ leaseId: 'l', end: state === 'live' ? null : ends[state], endedAtMs: state === 'live' ? null : 1 }) as LeaseRecord;
    walk(leaseMachine, make, leaseStateOf, (j, lease, to) => {
      if (to === 'live') {
        leaseMachine.check('lease l', leaseStateOf(lease), to); // nothing makes an ended lease live again
        return;
      }
      transitionLease(j, lease, ends[to], 5);
    });
  });

  it('peer work', () => {
    const work = (kind: PeerWorkKind): PeerWork =>
      kind === 'running' ? { kind, leaseId: 'l1' } : kind === 'orphaned' ? { kind, stepId: 's', leaseId: 'l0' } : ({ kind } as PeerWork);
    walk(peerWorkMachine, (kind) => ({ peerId: 'p', work: work(kind) }), (p) => p.work.kind, (j, p, to) => transitionWork(j, p, work(to)));
  });

  it('peer session (client)', () => {
    // The cell has no journal: each edge is reached from idle along a path in the table.
    const pathTo: Record<SessionState, SessionState[]> = {
      idle: [],
      connecting: ['connecting'],
      joined: ['connecting', 'joined'],
      reconnecting: ['connecting', 'reconnecting'],
      ended: ['ended'],
    };
    for (const { from, to, edge } of pairs(sessionMachine)) {
      const cell = new SessionStateCell();
      for (const step of pathTo[from]) cell.to(step);
      expect(cell.state).toBe(from);
      if (edge) {
        cell.to(to);
        expect(cell.state).toBe(to);
      } else {
        expect(() => cell.to(to)).toThrow(IllegalTransitionError);
        expect(cell.state).toBe(from);
      }
    }
  });
});
