import { describe, expect, it } from 'vitest';
import { defaultHeapGrowthPercent, nodeHeapFlags, planHeapSizing } from '../../cli/heap-sizing.js';

describe('V8 heap sizing of taskshard server', () => {
  it('finds the heap flags node was given, on its command line and in NODE_OPTIONS', () => {
    expect(nodeHeapFlags(['--enable-source-maps', '--max-old-space-size=2048'], ' --max-semi-space-size=32  --trace-gc --heap_growing_percent=80 ')).toEqual([
      '--max-old-space-size=2048',
      '--max-semi-space-size=32',
      '--heap_growing_percent=80',
    ]);
    expect(nodeHeapFlags([], undefined)).toEqual([]);
  });

  it('uses its default, or the option, where node was given no heap growth flag; 0 leaves it to V8', () => {
    expect(planHeapSizing({ value: defaultHeapGrowthPercent, source: 'default' }, [])).toEqual({ heapGrowthPercent: 50, source: 'default', nodeHeapFlags: [] });
    expect(planHeapSizing({ value: 30, source: 'cli' }, ['--max-semi-space-size=32'])).toEqual({ heapGrowthPercent: 30, source: 'cli', nodeHeapFlags: ['--max-semi-space-size=32'] });
    expect(planHeapSizing({ value: 0, source: 'env' }, [])).toEqual({ heapGrowthPercent: null, source: 'env', nodeHeapFlags: [] });
  });

  it("leaves node's own --heap-growing-percent in force and says so; refuses it together with the option", () => {
    expect(planHeapSizing({ value: 50, source: 'default' }, ['--heap-growing-percent=80'])).toEqual({ heapGrowthPercent: 80, source: 'node-flag', nodeHeapFlags: ['--heap-growing-percent=80'] });
    expect(planHeapSizing({ value: 50, source: 'default' }, ['--heap-growing-percent=0'])).toMatchObject({ heapGrowthPercent: null, source: 'node-flag' });
    expect(() => planHeapSizing({ value: 30, source: 'cli' }, ['--heap-growing-percent=80'])).toThrow("--heap-growth-percent and node's --heap-growing-percent=80 both set the heap growth; give one");
    expect(() => planHeapSizing({ value: 30, source: 'env' }, ['--heap-growing-percent=80'])).toThrow('TASKSHARD_HEAP_GROWTH_PERCENT and node');
    expect(() => planHeapSizing({ value: 50, source: 'default' }, ['--heap-growing-percent'])).toThrow("cannot read the value of node's --heap-growing-percent; write it as --heap-growing-percent=N");
  });
});
