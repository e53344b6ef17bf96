import type { StepDef } from '../shared/schema-file.js';

/**
 * The order in which a peer builds steps itself (fail-open): every step after
 * the steps it needs, ties in schema order (Kahn's algorithm, ready steps
 * taken lowest schema index first). Steps in `skip` (already built by
 * someone) are left out but count as satisfied needs.
 */
export function localBuildOrder(steps: readonly StepDef[], skip: ReadonlySet<string> = new Set()): StepDef[] {
  const indexOf = new Map(steps.map((s, i) => [s.id, i]));
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const ready: number[] = [];
  steps.forEach((step, i) => {
    if (skip.has(step.id)) return;
    const open = step.needs.filter((n) => indexOf.has(n) && !skip.has(n));
    waitingOn.set(step.id, open.length);
    for (const need of open) dependents.set(need, [...(dependents.get(need) ?? []), step.id]);
    if (open.length === 0) ready.push(i);
  });
  const order: StepDef[] = [];
  while (ready.length > 0) {
    const index = ready.shift()!;
    const step = steps[index]!;
    order.push(step);
    for (const dependent of dependents.get(step.id) ?? []) {
      const left = waitingOn.get(dependent)! - 1;
      waitingOn.set(dependent, left);
      if (left === 0) insertSorted(ready, indexOf.get(dependent)!);
    }
  }
  // A validated schema has no cycles; if one slipped through, its steps still run, in schema order.
  for (const step of steps) if (!skip.has(step.id) && !order.includes(step)) order.push(step);
  return order;
}

function insertSorted(list: number[], value: number): void {
  let at = list.findIndex((x) => x > value);
  if (at === -1) at = list.length;
  list.splice(at, 0, value);
}
