import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/**
 * How much the authority's old generation may grow after a full GC, in
 * percent of what survived it (`taskshard server --heap-growth-percent`).
 *
 * Left to itself, V8 on a machine with a few GiB or more lets the old
 * generation grow to 4x what survived the last full GC before it collects
 * again. The authority allocates fast and keeps little (a retained cohort is
 * ~17 KB), so its heap and RSS climbed for a whole day bench (200 -> 678 MB
 * while ~50 MB was live) and every full GC had that much more to sweep.
 * 50 % keeps the heap within 1.5x its live set; full GCs come more often and
 * each has less to do. V8 reads this limit each time it sizes the heap after
 * a GC, so it is set in-process at start (`v8.setFlagsFromString`, no
 * re-exec: the pid stays the one the operator started). The young generation
 * and the heap's maximum are fixed when V8 starts, so they can only be given
 * to node itself (`NODE_OPTIONS=--max-semi-space-size=32`); the start-up log
 * names every heap flag node was given.
 */
export const defaultHeapGrowthPercent = 50;

/** V8 flags that size the heap, as given to node (command line or NODE_OPTIONS). */
const heapFlagPattern = /^--(max[-_]semi[-_]space[-_]size|min[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor|max[-_]old[-_]space[-_]size|max[-_]heap[-_]size|heap[-_]growing[-_]percent)(=|$)/;
const growingFlagPattern = /^--heap[-_]growing[-_]percent(=|$)/;

export interface HeapSizing {
  /** The growth limit in force: a percent, or null for V8's own heuristic (up to 4x). */
  readonly heapGrowthPercent: number | null;
  /** Where it came from: our default, `--heap-growth-percent` / TASKSHARD_HEAP_GROWTH_PERCENT, or a V8 flag given to node. */
  readonly source: 'default' | 'cli' | 'env' | 'node-flag';
  /** The heap flags node was started with (they win over ours; each is logged at start-up). */
  readonly nodeHeapFlags: readonly string[];
}

/** The V8 heap flags in node's own arguments and NODE_OPTIONS, in that order. */
export function nodeHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const fromOptions = (nodeOptions ?? '').split(/\s+/).filter((a) => a !== '');
  return [...execArgv, ...fromOptions].filter((a) => heapFlagPattern.test(a));
}

/**
 * Decides the growth limit. A `--heap-growing-percent` given to node (on its
 * command line: NODE_OPTIONS does not allow it) wins (it is V8's own flag,
 * already in force); giving both it and
 * `--heap-growth-percent` is refused, so neither is silently ignored.
 */
export function planHeapSizing(option: { value: number; source: 'default' | 'cli' | 'env' }, flags: readonly string[]): HeapSizing {
  const given = flags.filter((f) => growingFlagPattern.test(f));
  if (given.length > 0) {
    if (option.source !== 'default') {
      const name = option.source === 'cli' ? '--heap-growth-percent' : 'TASKSHARD_HEAP_GROWTH_PERCENT';
      throw new Error(`${name} and node's ${given[given.length - 1]} both set the heap growth; give one`);
    }
    const flag = given[given.length - 1]!;
    const value = /=(\d+)$/.exec(flag)?.[1];
    if (value === undefined) throw new Error(`cannot read the value of node's ${flag}; write it as --heap-growing-percent=N`);
    return { heapGrowthPercent: Number(value) === 0 ? null : Number(value), source: 'node-flag', nodeHeapFlags: flags };
  }
  return { heapGrowthPercent: option.value === 0 ? null : option.value, source: option.source, nodeHeapFlags: flags };
}

/** Applies a plan that is ours to apply (a node flag is already in force). */
export function applyHeapSizing(plan: HeapSizing): void {
  if (plan.source === 'node-flag' || plan.heapGrowthPercent === null) return;
  setFlagsFromString(`--heap-growing-percent=${plan.heapGrowthPercent}`);
}

/** The fields of the start-up log line that says how the heap is sized. */
export function heapSizingFields(plan: HeapSizing): Record<string, unknown> {
  return {
    heapGrowthPercent: plan.heapGrowthPercent ?? 'v8-default',
    heapGrowthFrom: plan.source,
    heapLimitMb: Math.round(getHeapStatistics().heap_size_limit / 1048576),
    nodeHeapFlags: plan.nodeHeapFlags,
  };
}
