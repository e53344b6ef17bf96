import { universeStepId } from './ids.js';
import { formatJsonPath, type JsonPath } from './json-text.js';
import type { StepDef } from './schema-file.js';
import type { LocatedProblem } from './zod-issues.js';

/**
 * Graph rules of a schema's steps, all in O(steps + edges):
 * unique ids, `universe` reserved, every `needs` names a known step (with a
 * closest-id suggestion), no step needs itself or lists a need twice, no cycles.
 */

/** A problem in a schema; rule names here: `reserved-id`, `duplicate-id`, `unknown-need`, `self-need`, `duplicate-need`, `cycle`. */
export type SchemaIssue = LocatedProblem;

/** A step plus where it came from in the file, for error paths. */
export interface LocatedStep {
  readonly step: StepDef;
  /** Path of the step itself, e.g. `["steps", 2]` or `["steps", "build"]`. */
  readonly path: JsonPath;
  /** Path prefix of its `needs` array (list form only). */
  readonly needsPath: JsonPath | null;
}

export function checkStepGraph(steps: readonly LocatedStep[]): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const indexById = new Map<string, number>();

  steps.forEach((located, i) => {
    const { step } = located;
    if (step.id === universeStepId) {
      issues.push({
        path: idPath(located),
        rule: 'reserved-id',
        message: `"${universeStepId}" is reserved for the final build every peer runs itself; rename this step`,
      });
    }
    const first = indexById.get(step.id);
    if (first !== undefined) {
      issues.push({
        path: idPath(located),
        rule: 'duplicate-id',
        message: `duplicate step id "${step.id}" (first used by ${formatJsonPath(steps[first]!.path)})`,
      });
    } else {
      indexById.set(step.id, i);
    }
  });

  steps.forEach((located) => {
    const seen = new Set<string>();
    located.step.needs.forEach((need, j) => {
      const path = located.needsPath ? [...located.needsPath, j] : located.path;
      if (need === located.step.id) {
        issues.push({ path, rule: 'self-need', message: `step "${need}" needs itself` });
      } else if (!indexById.has(need)) {
        const hint =
          need === universeStepId
            ? ' ("universe" is built last by every peer and cannot be needed)'
            : suggestionText(need, indexById.keys());
        issues.push({ path, rule: 'unknown-need', message: `unknown step "${need}"${hint}` });
      } else if (seen.has(need)) {
        issues.push({ path, rule: 'duplicate-need', message: `"${need}" is listed twice` });
      }
      seen.add(need);
    });
  });

  if (issues.length === 0) {
    const cycle = findCycle(steps.map((s) => s.step), indexById);
    if (cycle) {
      const start = steps[cycle.fromIndex]!;
      issues.push({
        path: start.needsPath ? [...start.needsPath, cycle.needIndex] : start.path,
        rule: 'cycle',
        message: `cycle: ${cycle.ids.join(' -> ')}`,
      });
    }
  }
  return issues;
}

function idPath(located: LocatedStep): JsonPath {
  return located.needsPath ? [...located.path, 'id'] : located.path;
}

interface FoundCycle {
  /** Ids along the cycle, first repeated at the end: `a -> b -> a`. */
  readonly ids: string[];
  /** The step whose need closes the cycle, and the index of that need. */
  readonly fromIndex: number;
  readonly needIndex: number;
}

/** Iterative three-colour DFS over `needs` edges; returns the first cycle found. */
function findCycle(steps: readonly StepDef[], indexById: ReadonlyMap<string, number>): FoundCycle | null {
  const white = 0;
  const grey = 1;
  const black = 2;
  const colour = new Uint8Array(steps.length);
  const nextNeed = new Uint32Array(steps.length);
  const stack: number[] = [];
  for (let root = 0; root < steps.length; root++) {
    if (colour[root] !== white) continue;
    stack.push(root);
    colour[root] = grey;
    while (stack.length > 0) {
      const node = stack[stack.length - 1]!;
      const needs = steps[node]!.needs;
      const j = nextNeed[node]!;
      if (j >= needs.length) {
        colour[node] = black;
        stack.pop();
        continue;
      }
      nextNeed[node] = j + 1;
      const child = indexById.get(needs[j]!)!;
      if (colour[child] === grey) {
        const from = stack.indexOf(child);
        const ids = stack.slice(from).map((i) => steps[i]!.id);
        ids.push(steps[child]!.id);
        return { ids, fromIndex: node, needIndex: j };
      }
      if (colour[child] === white) {
        colour[child] = grey;
        stack.push(child);
      }
    }
  }
  return null;
}

function suggestionText(wanted: string, ids: Iterable<string>): string {
  const best = closestId(wanted, ids);
  return best ? ` (did you mean "${best}"?)` : '';
}

/** The known id closest to `wanted` by edit distance, when it is close enough to be a typo. */
export function closestId(wanted: string, ids: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(wanted.length / 3)) + 1;
  for (const id of ids) {
    const d = editDistance(wanted.toLowerCase(), id.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = id;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning `limit`) once it cannot be below `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return previous[b.length]!;
}
