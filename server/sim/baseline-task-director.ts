import { EventQueue } from './event-queue.js';
import type { DurationTable } from './step-durations.js';
import { transitiveNeeds } from './step-durations.js';
import { policyNames, runKinds, type PeerTimeline, type PolicyRun, type SimCohort, type SimPeerSpec, type SimWorkload, type StepRun } from './sim-types.js';

/**
 * Baseline (d): the original Task Director's dispatch policy, modelled on its
 * `SchemaInstance` (github.com/alexander-scott/task-sharding):
 *
 * - one shared to-do list per schema instance, `[0, 1, ..., n-1]` in schema
 *   order; every assignment is `to_do.pop()`, i.e. the *last* remaining step;
 * - a peer gets a step when it joins and after each step it completes, and
 *   nothing otherwise: a peer that joins or finishes while the list is empty
 *   waits, idle, for "schema complete";
 * - "schema complete" goes to every registered peer once the list is empty and
 *   nothing is in progress;
 * - no priorities and no DAG: the list order is all there is.
 *
 * What ignoring `needs` costs is modelled through the remote cache: a step
 * handed out before the steps it needs are in the cache makes the peer's build
 * tool build those missing needs itself first (in dependency order; kind
 * `missing-need`), and whatever a peer builds lands in the cache when it is
 * done. A step already in the cache when it is popped costs nothing (a full
 * cache hit). A peer that joins after its instance completed is ready at once
 * (everything is a cache hit). Cohorts are the ones the real core formed, so
 * only the dispatch policy differs.
 */
export function runTaskDirectorBaseline(workload: SimWorkload, cohorts: readonly SimCohort[], durations: DurationTable): PolicyRun {
  const closure = transitiveNeeds(workload.schema);
  const stepIds = workload.schema.steps.map((s) => s.id);
  const runs: StepRun[] = [];
  const peers: PeerTimeline[] = [];
  for (const cohort of cohorts) {
    const result = runInstance(cohort, stepIds, closure, durations);
    runs.push(...result.runs);
    peers.push(...result.peers);
  }
  return { policy: policyNames.taskDirector, runs, peers };
}

type InstanceEvent = { readonly kind: 'arrive'; readonly peer: SimPeerSpec } | { readonly kind: 'finish'; readonly peer: SimPeerSpec };

function runInstance(
  cohort: SimCohort,
  stepIds: readonly string[],
  closure: ReadonlyMap<string, readonly string[]>,
  durations: DurationTable,
): { runs: StepRun[]; peers: PeerTimeline[] } {
  const toDo = stepIds.map((_, i) => i);
  /** When each step's result is (or will be) in the remote cache. */
  const inCacheAt = new Map<string, number>();
  const inProgress = new Set<string>();
  const registered: SimPeerSpec[] = [];
  const readyAt = new Map<string, number>();
  const runs: StepRun[] = [];
  const queue = new EventQueue<InstanceEvent>();
  let complete = false;
  for (const member of cohort.members) queue.push(member.arrivalMs, { kind: 'arrive', peer: member });

  const cached = (stepId: string, t: number): boolean => {
    const at = inCacheAt.get(stepId);
    return at !== undefined && at <= t;
  };

  const assign = (peer: SimPeerSpec, t: number): void => {
    const stepId = stepIds[toDo.pop()!]!;
    inProgress.add(peer.peerId);
    let at = t;
    const build = (id: string, kind: StepRun['kind']): void => {
      const ms = durations.ms(cohort.index, id);
      runs.push({ peerId: peer.peerId, cohort: cohort.index, stepId: id, kind, startMs: at, endMs: at + ms, aborted: false });
      at += ms;
      inCacheAt.set(id, Math.min(inCacheAt.get(id) ?? Infinity, at));
    };
    if (!cached(stepId, t)) {
      for (const need of closure.get(stepId)!) if (!cached(need, t)) build(need, runKinds.missingNeed);
      build(stepId, runKinds.assigned);
    }
    queue.push(at, { kind: 'finish', peer });
  };

  const completeAll = (t: number): void => {
    complete = true;
    for (const p of registered) if (!readyAt.has(p.peerId)) readyAt.set(p.peerId, t);
  };

  for (let event = queue.pop(); event; event = queue.pop()) {
    const { peer } = event.value;
    const t = event.atMs;
    if (event.value.kind === 'arrive') {
      registered.push(peer);
      if (complete) readyAt.set(peer.peerId, t);
      else if (toDo.length > 0) assign(peer, t);
      continue;
    }
    inProgress.delete(peer.peerId);
    if (toDo.length > 0) assign(peer, t);
    else if (inProgress.size === 0) completeAll(t);
  }

  const peers = cohort.members.map((m) => {
    const at = readyAt.get(m.peerId);
    if (at === undefined) throw new Error(`task director baseline: peer ${m.peerId} never completed`);
    return { peerId: m.peerId, cohort: cohort.index, arrivalMs: m.arrivalMs, readyAtMs: at };
  });
  return { runs, peers };
}
