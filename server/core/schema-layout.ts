import type { SchemaDef } from '../../shared/schema-file.js';

/**
 * What a cohort needs to know about its schema's shape, made once per schema object and shared by
 * every cohort of it (issue 17): each step's index in schema order, the reverse `needs` edges, and a
 * topological order (needs before dependents) for the critical path. A schema object is never
 * changed once the core has it (the transport checks it once per digest and passes the same object
 * to every hello of that digest), so neither is its layout; it is held weakly and goes with the schema.
 * A new cohort of 100 steps made two maps of 100 entries and 100 arrays for these, and the critical
 * path two more maps and an order, before this.
 */
export interface SchemaLayout {
  /** Each step's index in `schema.steps`. */
  readonly index: ReadonlyMap<string, number>;
  /** The steps that need each step (reverse `needs` edges), in schema order. */
  readonly dependents: ReadonlyMap<string, readonly string[]>;
  /** Every step id, needs before dependents (Kahn's algorithm, schema order among the ready ones). */
  readonly topologicalOrder: readonly string[];
}

const layouts = new WeakMap<SchemaDef, SchemaLayout>();

/** The layout of `schema` (made on first use). Throws for a cycle: a schema reaches the core validated. */
export function schemaLayout(schema: SchemaDef): SchemaLayout {
  let layout = layouts.get(schema);
  if (layout === undefined) layouts.set(schema, (layout = makeLayout(schema)));
  return layout;
}

function makeLayout(schema: SchemaDef): SchemaLayout {
  const index = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const remainingNeeds = new Map<string, number>();
  schema.steps.forEach((step, i) => {
    index.set(step.id, i);
    dependents.set(step.id, []);
    remainingNeeds.set(step.id, step.needs.length);
  });
  for (const step of schema.steps) for (const need of step.needs) dependents.get(need)!.push(step.id);
  const order: string[] = schema.steps.filter((s) => s.needs.length === 0).map((s) => s.id);
  for (let i = 0; i < order.length; i++) {
    for (const dependent of dependents.get(order[i]!)!) {
      const left = remainingNeeds.get(dependent)! - 1;
      remainingNeeds.set(dependent, left);
      if (left === 0) order.push(dependent);
    }
  }
  if (order.length !== schema.steps.length) throw new Error(`schema ${schema.id} has a cycle; it must be validated before scheduling`);
  for (const list of dependents.values()) Object.freeze(list);
  return Object.freeze({ index, dependents, topologicalOrder: Object.freeze(order) });
}
