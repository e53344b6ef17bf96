import type { SchemaDef } from '../../shared/schema-file.js';
import { schemaLayout } from './schema-layout.js';

/**
 * Critical-path priority (DESIGN §6): a step's priority is the longest
 * estimated path from it to the end of the DAG, its own estimate included.
 * Computed in O(steps + edges) over a topological order (the schema's layout,
 * made once per schema object: schema-layout.ts). The schema is valid
 * (acyclic) by the time it reaches the core.
 */
export function criticalPathMs(schema: SchemaDef, estimateMs: (stepId: string) => number): Map<string, number> {
  const { dependents, topologicalOrder: order } = schemaLayout(schema);
  const path = new Map<string, number>();
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i]!;
    let longestAfter = 0;
    for (const dependent of dependents.get(id)!) longestAfter = Math.max(longestAfter, path.get(dependent)!);
    path.set(id, estimateMs(id) + longestAfter);
  }
  return path;
}
