import type { SchemaDef } from '../../shared/schema-file.js';

/**
 * Critical-path priority (DESIGN §6): a step's priority is the longest
 * estimated path from it to the end of the DAG, its own estimate included.
 * Computed in O(steps + edges) over a topological order. The schema is valid
 * (acyclic) by the time it reaches the core.
 */
export function criticalPathMs(schema: SchemaDef, estimateMs: (stepId: string) => number): Map<string, number> {
  const dependents = new Map<string, string[]>();
  const remainingNeeds = new Map<string, number>();
  for (const step of schema.steps) {
    dependents.set(step.id, []);
    remainingNeeds.set(step.id, step.needs.length);
  }
  for (const step of schema.steps) for (const need of step.needs) dependents.get(need)!.push(step.id);

  // Kahn's algorithm gives a topological order (needs before dependents).
  const order: string[] = schema.steps.filter((s) => s.needs.length === 0).map((s) => s.id);
  for (let i = 0; i < order.length; i++) {
    for (const dependent of dependents.get(order[i]!)!) {
      const left = remainingNeeds.get(dependent)! - 1;
      remainingNeeds.set(dependent, left);
      if (left === 0) order.push(dependent);
    }
  }
  if (order.length !== schema.steps.length) throw new Error(`schema ${schema.id} has a cycle; it must be validated before scheduling`);

  const path = new Map<string, number>();
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i]!;
    let longestAfter = 0;
    for (const dependent of dependents.get(id)!) longestAfter = Math.max(longestAfter, path.get(dependent)!);
    path.set(id, estimateMs(id) + longestAfter);
  }
  return path;
}
