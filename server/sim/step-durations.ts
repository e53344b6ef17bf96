import { criticalPathMs } from '../core/priority.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { unitDraw } from './seeded-random.js';
import type { SimWorkload } from './sim-types.js';

/**
 * The true duration of each step in each cohort, shared by every policy of a
 * run: `duration × (1 + jitter × u)` with u in [-1, 1) drawn from (seed,
 * cohort, step), rounded to whole milliseconds (the protocol's unit).
 */
export class DurationTable {
  private readonly cache = new Map<string, number>();

  constructor(private readonly workload: SimWorkload) {
    for (const step of workload.schema.steps) {
      if (!workload.durationsMs.has(step.id)) throw new Error(`workload ${workload.name} has no duration for step "${step.id}"`);
    }
  }

  ms(cohort: number, stepId: string): number {
    const key = `${cohort}\u0000${stepId}`;
    const known = this.cache.get(key);
    if (known !== undefined) return known;
    const base = this.workload.durationsMs.get(stepId);
    if (base === undefined) throw new Error(`unknown step "${stepId}" in workload ${this.workload.name}`);
    const u = this.workload.jitter === 0 ? 0 : unitDraw(this.workload.seed, 'duration', cohort, stepId) * 2 - 1;
    const ms = Math.max(0, Math.round(base * (1 + this.workload.jitter * u)));
    this.cache.set(key, ms);
    return ms;
  }

  uniqueWorkMs(cohort: number): number {
    let sum = 0;
    for (const step of this.workload.schema.steps) sum += this.ms(cohort, step.id);
    return sum;
  }

  /** The longest chain of `needs` in the cohort, with this cohort's durations. */
  criticalPathMs(cohort: number): number {
    let longest = 0;
    for (const ms of criticalPathMs(this.workload.schema, (stepId) => this.ms(cohort, stepId)).values()) longest = Math.max(longest, ms);
    return longest;
  }
}

/** Step ids with every need before its dependents, schema order among the ready ones. */
export function topologicalOrder(schema: SchemaDef): string[] {
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const step of schema.steps) {
    remaining.set(step.id, step.needs.length);
    dependents.set(step.id, []);
  }
  for (const step of schema.steps) for (const need of step.needs) dependents.get(need)!.push(step.id);
  const index = new Map(schema.steps.map((s, i) => [s.id, i]));
  const ready = schema.steps.filter((s) => s.needs.length === 0).map((s) => s.id);
  const order: string[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => index.get(a)! - index.get(b)!);
    const id = ready.shift()!;
    order.push(id);
    for (const d of dependents.get(id)!) {
      const left = remaining.get(d)! - 1;
      remaining.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  if (order.length !== schema.steps.length) throw new Error(`schema ${schema.id} has a cycle; validate it first`);
  return order;
}

/** For each step, every step it needs directly or indirectly, in topological order. */
export function transitiveNeeds(schema: SchemaDef): Map<string, string[]> {
  const order = topologicalOrder(schema);
  const position = new Map(order.map((id, i) => [id, i]));
  const needsOf = new Map(schema.steps.map((s) => [s.id, s.needs]));
  const closure = new Map<string, Set<string>>();
  for (const id of order) {
    const all = new Set<string>();
    for (const need of needsOf.get(id)!) {
      all.add(need);
      for (const n of closure.get(need)!) all.add(n);
    }
    closure.set(id, all);
  }
  const out = new Map<string, string[]>();
  for (const [id, set] of closure) out.set(id, [...set].sort((a, b) => position.get(a)! - position.get(b)!));
  return out;
}

/** The steps of one longest `needs` chain, first to last, under the given durations. */
export function criticalPathChain(schema: SchemaDef, ms: (stepId: string) => number): string[] {
  const path = criticalPathMs(schema, ms);
  const dependents = new Map<string, string[]>(schema.steps.map((s) => [s.id, []]));
  for (const step of schema.steps) for (const need of step.needs) dependents.get(need)!.push(step.id);
  const best = (ids: readonly string[]): string | undefined => {
    let top: string | undefined;
    for (const id of ids) if (top === undefined || path.get(id)! > path.get(top)!) top = id;
    return top;
  };
  const chain: string[] = [];
  for (let id = best(schema.steps.filter((s) => s.needs.length === 0).map((s) => s.id)); id !== undefined; id = best(dependents.get(id)!)) chain.push(id);
  return chain;
}
