import { EventQueue } from './event-queue.js';
import { unitDraw } from './seeded-random.js';
import type { DurationTable } from './step-durations.js';
import { topologicalOrder } from './step-durations.js';
import { policyNames, runKinds, type PeerTimeline, type PolicyName, type PolicyRun, type SimCohort, type SimWorkload, type StepRun } from './sim-types.js';
import type { SchemaDef } from '../../shared/schema-file.js';

/**
 * Baselines (b) and (c): no authority, but a shared remote cache that the
 * cohort's jobs race on, which is what most teams already have.
 *
 * Every peer walks the steps one at a time in its own order (an order that
 * respects `needs`, as a build tool does), starting when it arrives. A step is
 * a cache hit, costing nothing, only if another peer *finished* it at or
 * before the moment this peer starts it; a step another peer is still building
 * is built again (the race). A peer is ready for its universe build when its
 * walk ends; it never waits for anyone. The cache is per cohort (the cohorts
 * the real core formed), so only the dispatch differs from taskshard.
 *
 * (b) every peer walks in schema order (`topologicalOrder`); (c) every peer
 * walks in its own random order, drawn from the seed, the cohort and its peer
 * id (a uniformly chosen ready step at each point).
 */

/** A peer's walk: every step id once, each after the steps it needs. */
export type OrderFn = (cohort: number, peerId: string) => readonly string[];

export function schemaOrder(schema: SchemaDef): OrderFn {
  const order = topologicalOrder(schema);
  return () => order;
}

/** A random order that respects `needs`, the same for the same (seed, cohort, peer). */
export function seededRandomOrder(schema: SchemaDef, seed: number): OrderFn {
  const index = new Map(schema.steps.map((s, i) => [s.id, i]));
  const dependents = new Map<string, string[]>(schema.steps.map((s) => [s.id, []]));
  for (const step of schema.steps) for (const need of step.needs) dependents.get(need)!.push(step.id);
  return (cohort, peerId) => {
    const remaining = new Map(schema.steps.map((s) => [s.id, s.needs.length]));
    const ready = schema.steps.filter((s) => s.needs.length === 0).map((s) => s.id);
    const order: string[] = [];
    while (ready.length > 0) {
      ready.sort((a, b) => index.get(a)! - index.get(b)!);
      const pick = Math.floor(unitDraw(seed, 'order', cohort, peerId, order.length) * ready.length);
      const id = ready.splice(pick, 1)[0]!;
      order.push(id);
      for (const d of dependents.get(id)!) {
        const left = remaining.get(d)! - 1;
        remaining.set(d, left);
        if (left === 0) ready.push(d);
      }
    }
    if (order.length !== schema.steps.length) throw new Error(`schema ${schema.id} has a cycle; validate it first`);
    return order;
  };
}

export function runSharedCacheBaseline(workload: SimWorkload, cohorts: readonly SimCohort[], durations: DurationTable, policy: PolicyName, orderFor: OrderFn): PolicyRun {
  const runs: StepRun[] = [];
  const peers: PeerTimeline[] = [];
  for (const cohort of cohorts) {
    const result = runCohort(cohort, workload.schema.steps.length, durations, policy, orderFor);
    runs.push(...result.runs);
    peers.push(...result.peers);
  }
  return { policy, runs, peers };
}

/** (b): the shared-cache race with every peer in schema order. */
export function runSchemaOrderBaseline(workload: SimWorkload, cohorts: readonly SimCohort[], durations: DurationTable): PolicyRun {
  return runSharedCacheBaseline(workload, cohorts, durations, policyNames.sharedCacheSchemaOrder, schemaOrder(workload.schema));
}

/** (c): the shared-cache race with every peer in its own seeded random order. */
export function runRandomOrderBaseline(workload: SimWorkload, cohorts: readonly SimCohort[], durations: DurationTable): PolicyRun {
  return runSharedCacheBaseline(workload, cohorts, durations, policyNames.sharedCacheRandomOrder, seededRandomOrder(workload.schema, workload.seed));
}

interface Walker {
  readonly peerId: string;
  readonly arrivalMs: number;
  readonly order: readonly string[];
  next: number;
}

function runCohort(cohort: SimCohort, stepCount: number, durations: DurationTable, policy: PolicyName, orderFor: OrderFn): { runs: StepRun[]; peers: PeerTimeline[] } {
  /** The earliest time each step's result is in the cache (known when its build starts: nothing aborts here). */
  const inCacheAt = new Map<string, number>();
  const runs: StepRun[] = [];
  const readyAt = new Map<string, number>();
  const queue = new EventQueue<Walker>();
  for (const member of cohort.members) {
    const order = orderFor(cohort.index, member.peerId);
    if (order.length !== stepCount || new Set(order).size !== stepCount) throw new Error(`${policy}: the order for ${member.peerId} is not every step once`);
    queue.push(member.arrivalMs, { peerId: member.peerId, arrivalMs: member.arrivalMs, order, next: 0 });
  }
  // Each event is one peer about to start its next step at `atMs`; hits cost nothing, so a peer
  // passes over every hit at once and stops at the next step it must build.
  for (let event = queue.pop(); event; event = queue.pop()) {
    const walker = event.value;
    const t = event.atMs;
    let built = false;
    while (walker.next < walker.order.length && !built) {
      const stepId = walker.order[walker.next++]!;
      const cachedAt = inCacheAt.get(stepId);
      if (cachedAt !== undefined && cachedAt <= t) continue;
      const ms = durations.ms(cohort.index, stepId);
      runs.push({ peerId: walker.peerId, cohort: cohort.index, stepId, kind: runKinds.own, startMs: t, endMs: t + ms, aborted: false });
      inCacheAt.set(stepId, Math.min(cachedAt ?? Infinity, t + ms));
      queue.push(t + ms, walker);
      built = true;
    }
    if (!built) readyAt.set(walker.peerId, t);
  }
  const peers = cohort.members.map((m) => {
    const at = readyAt.get(m.peerId);
    if (at === undefined) throw new Error(`${policy}: peer ${m.peerId} never finished its walk`);
    return { peerId: m.peerId, cohort: cohort.index, arrivalMs: m.arrivalMs, readyAtMs: at };
  });
  return { runs, peers };
}
