import { defaultCoreConfig, type ConnId, type CoreOutput, type IdSource } from '../core/core-types.js';
import { refusalCode, type Effect } from '../core/effects.js';
import type { DurationRecord } from '../core/records.js';
import { Scheduler } from '../core/scheduler.js';
import { durationKey } from '../core/source-state.js';
import { schemaDigest } from '../../shared/schema-digest.js';
import { EventQueue } from './event-queue.js';
import type { DurationTable } from './step-durations.js';
import { policyNames, runKinds, type PeerTimeline, type PolicyRun, type SimOptions, type SimPeerSpec, type SimWorkload, type StepRun } from './sim-types.js';

/**
 * Drives the real scheduler core (`server/core/scheduler.ts`, the same object
 * the authority runs) with a virtual clock: simulated peers say `hello` at
 * their arrival time, run each assigned step for its duration, send
 * `finished`, and disconnect after `complete`, as a real peer's socket would.
 * The core's deadline (`nextDeadlineMs`) is honoured with `tick` inputs, so
 * straggler backups and sweeps happen exactly as in the server.
 *
 * Nothing here decides who builds what: every assignment is an `assign` frame
 * the core sent.
 */

/** Virtual epoch: the core sees `simEpochMs + t` for simulation time t. */
export const simEpochMs = 1_700_000_000_000;

export interface CoreCohort {
  readonly coreId: string;
  readonly members: SimPeerSpec[];
}

export interface CoreRun extends PolicyRun {
  /** Cohorts in creation order; `cohort` numbers in runs and timelines index this. */
  readonly cohorts: readonly CoreCohort[];
}

interface SimPeer {
  readonly spec: SimPeerSpec;
  readonly connId: ConnId;
  cohort: number;
  running: { readonly leaseId: string; readonly run: StepRun } | null;
  readyAtMs: number | null;
}

type SimEvent =
  | { readonly kind: 'arrive'; readonly peer: SimPeer }
  | { readonly kind: 'finish'; readonly peer: SimPeer; readonly leaseId: string }
  | { readonly kind: 'leave'; readonly peer: SimPeer };

/** Ids like the test harness's: c1, c2, ... and l1, l2, ... (valid protocol tokens). */
function counterIds(): IdSource {
  let c = 0;
  let l = 0;
  return { cohortId: () => `c${++c}`, leaseId: () => `l${++l}` };
}

export function runCore(workload: SimWorkload, durations: DurationTable, options: SimOptions = {}): CoreRun {
  const scheduler = new Scheduler({ ...defaultCoreConfig, ...options.core }, counterIds());
  const maxEvents = options.maxEvents ?? 5_000_000;
  const digest = schemaDigest(workload.schema);
  const queue = new EventQueue<SimEvent>();
  const runs: StepRun[] = [];
  const cohorts: CoreCohort[] = [];
  const cohortIndex = new Map<string, number>();
  const byConn = new Map<ConnId, SimPeer>();
  const peers: SimPeer[] = [];
  let now = simEpochMs;

  if (workload.seedDurations) {
    const rows: DurationRecord[] = [];
    for (const repo of new Set(workload.peers.map((p) => p.registration.repo))) {
      for (const step of workload.schema.steps) {
        rows.push({ durationKey: durationKey(repo, workload.schema.id, step.id), avgMs: workload.durationsMs.get(step.id)!, samples: 1 });
      }
    }
    scheduler.restore({ cohorts: [], steps: [], leases: [], peers: [], memos: [], durations: rows }, now);
  }

  workload.peers.forEach((spec, i) => {
    const peer: SimPeer = { spec, connId: i + 1, cohort: -1, running: null, readyAtMs: null };
    peers.push(peer);
    byConn.set(peer.connId, peer);
    queue.push(simEpochMs + spec.arrivalMs, { kind: 'arrive', peer });
  });

  const onEffect = (peer: SimPeer, message: Effect): void => {
    switch (message.kind) {
      case 'joined': {
        let index = cohortIndex.get(message.cohort.id);
        if (index === undefined) {
          index = cohorts.length;
          cohortIndex.set(message.cohort.id, index);
          cohorts.push({ coreId: message.cohort.id, members: [] });
        }
        peer.cohort = index;
        cohorts[index]!.members.push(peer.spec);
        return;
      }
      case 'granted': {
        if (peer.running) throw new Error(`core assigned ${message.stepId} to ${peer.spec.peerId}, which is still running ${peer.running.run.stepId}`);
        const run: StepRun = {
          peerId: peer.spec.peerId,
          cohort: peer.cohort,
          stepId: message.stepId,
          kind: message.backup ? runKinds.backup : runKinds.assigned,
          startMs: now - simEpochMs,
          endMs: now - simEpochMs,
          aborted: false,
        };
        runs.push(run);
        peer.running = { leaseId: message.leaseId, run };
        queue.push(now + durations.ms(peer.cohort, message.stepId), { kind: 'finish', peer, leaseId: message.leaseId });
        return;
      }
      case 'abort':
        if (peer.running?.leaseId === message.leaseId) {
          peer.running.run.endMs = now - simEpochMs;
          peer.running.run.aborted = true;
          peer.running = null;
        }
        return;
      case 'complete':
        peer.readyAtMs = now - simEpochMs;
        queue.push(now, { kind: 'leave', peer });
        return;
      case 'refuse':
        throw new Error(`the core refused simulated peer ${peer.spec.peerId}: ${refusalCode(message.refusal)} (${JSON.stringify(message.refusal)})`);
      case 'superseded':
      case 'close':
        throw new Error(`the core closed simulated connection ${message.connId}`);
      case 'wait':
      case 'step-changed':
      case 'stat':
      case 'notice':
        return;
    }
  };

  const apply = (out: CoreOutput): void => {
    for (const effect of out.effects) {
      const conns = effect.kind === 'step-changed' ? effect.connIds : 'connId' in effect ? [effect.connId] : [];
      for (const connId of conns) {
        const peer = byConn.get(connId);
        if (peer) onEffect(peer, effect);
      }
    }
  };

  let ready = 0;
  let processed = 0;
  while (ready < peers.length) {
    if (++processed > maxEvents) throw new Error(`simulation of ${workload.name} passed ${maxEvents} events without finishing`);
    const nextEventAt = queue.peekTime();
    if (nextEventAt === null) {
      const stuck = peers.filter((p) => p.readyAtMs === null).map((p) => p.spec.peerId);
      throw new Error(`simulation of ${workload.name} stalled at t=${now - simEpochMs} ms: nothing running, ${stuck.length} peers never got complete (${stuck.slice(0, 5).join(', ')})`);
    }
    const deadline = scheduler.nextDeadlineMs();
    if (deadline !== null && deadline < nextEventAt) {
      now = Math.max(now, deadline);
      apply(scheduler.handle({ kind: 'tick' }, now));
      continue;
    }
    const event = queue.pop()!;
    now = event.atMs;
    const { peer } = event.value;
    switch (event.value.kind) {
      case 'arrive':
        apply(
          scheduler.handle(
            {
              kind: 'hello',
              connId: peer.connId,
              peerId: peer.spec.peerId,
              registration: peer.spec.registration,
              schema: workload.schema,
              digest,
              presentedToken: null,
              freshToken: { token: `t-${peer.spec.peerId}`, hash: `h-${peer.spec.peerId}` },
              currentStep: null,
              resumable: true,
            },
            now,
          ),
        );
        if (peer.cohort < 0) throw new Error(`simulated peer ${peer.spec.peerId} got no welcome`);
        break;
      case 'finish': {
        const running = peer.running;
        if (running?.leaseId !== event.value.leaseId) break; // aborted meanwhile
        running.run.endMs = now - simEpochMs;
        peer.running = null;
        apply(
          scheduler.handle(
            {
              kind: 'finished',
              connId: peer.connId,
              leaseId: running.leaseId,
              stepId: running.run.stepId,
              ok: true,
              exitCode: 0,
              durationMs: running.run.endMs - running.run.startMs,
              logTail: null,
            },
            now,
          ),
        );
        break;
      }
      case 'leave':
        ready++;
        apply(scheduler.handle({ kind: 'disconnected', connId: peer.connId }, now));
        break;
    }
  }

  const timelines: PeerTimeline[] = peers.map((p) => ({ peerId: p.spec.peerId, cohort: p.cohort, arrivalMs: p.spec.arrivalMs, readyAtMs: p.readyAtMs! }));
  return { policy: policyNames.taskshard, runs, peers: timelines, cohorts };
}
