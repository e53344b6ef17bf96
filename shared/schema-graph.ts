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

  // Every cycle, one per strongly connected group of steps, even alongside the problems above.
  for (const cycle of findCycles(steps.map((l) => l.step), indexById)) {
    const start = steps[cycle.fromIndex]!;
    issues.push({
      path: start.needsPath ? [...start.needsPath, cycle.needIndex] : start.path,
      rule: 'cycle',
      message: `cycle: ${cycle.ids.join(' -> ')}`,
    });
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

/**
 * One cycle per strongly connected component (Tarjan, iterative), in O(steps +
 * edges): a self-need is reported elsewhere, and needs naming unknown steps are
 * skipped. Each cycle starts at its component's first step in schema order and
 * is the shortest way back to it (BFS inside the component).
 */
function findCycles(steps: readonly StepDef[], indexById: ReadonlyMap<string, number>): FoundCycle[] {
  const n = steps.length;
  const edges = steps.map((s, i) => s.needs.map((need) => indexById.get(need)).filter((j): j is number => j !== undefined && j !== i));
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const component = new Int32Array(n).fill(-1);
  const stack: number[] = [];
  const components: number[][] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: [number, number][] = [[root, 0]];
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const [v, k] = frame;
      if (k === 0) {
        index[v] = low[v] = counter++;
        stack.push(v);
        onStack[v] = 1;
      }
      const out = edges[v]!;
      if (k < out.length) {
        frame[1] = k + 1;
        const w = out[k]!;
        if (index[w] === -1) work.push([w, 0]);
        else if (onStack[w]) low[v] = Math.min(low[v]!, index[w]!);
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent[0]] = Math.min(low[parent[0]]!, low[v]!);
      if (low[v] === index[v]) {
        const members: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          component[w] = components.length;
          members.push(w);
        } while (w !== v);
        components.push(members);
      }
    }
  }
  const cycles: FoundCycle[] = [];
  for (let c = 0; c < components.length; c++) {
    const members = components[c]!;
    if (members.length < 2) continue;
    const start = Math.min(...members);
    const previous = new Map<number, number>([[start, -1]]);
    const queue = [start];
    let closing: { from: number } | null = null;
    for (let q = 0; q < queue.length && closing === null; q++) {
      const u = queue[q]!;
      for (const w of edges[u]!) {
        if (component[w] !== c) continue;
        if (w === start) {
          closing = { from: u };
          break;
        }
        if (!previous.has(w)) {
          previous.set(w, u);
          queue.push(w);
        }
      }
    }
    if (closing === null) continue; // unreachable: a component of 2+ always has a cycle through each member
    const path: number[] = [];
    for (let v = closing.from; v !== -1; v = previous.get(v)!) path.push(v);
    path.reverse();
    const from = closing.from;
    cycles.push({ ids: [...path, start].map((i) => steps[i]!.id), fromIndex: from, needIndex: steps[from]!.needs.indexOf(steps[start]!.id) });
  }
  return cycles;
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
