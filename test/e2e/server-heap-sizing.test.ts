import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cliPath } from '../helpers/cli.js';
import { killAll, startAuthority } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-heap-sizing-');
});
afterEach(async () => {
  await killAll();
  dir.remove();
});

/** The start-up line that says how the V8 heap is sized. */
function sizingLine(stdout: string): Record<string, unknown> {
  const line = stdout.split('\n').find((l) => l.includes('"msg":"V8 heap sizing"'));
  if (line === undefined) throw new Error(`no "V8 heap sizing" line in:\n${stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('taskshard server sizes the V8 heap and says how at start-up', () => {
  it('by default: 50 % growth after a full GC, and the heap limit V8 chose', async () => {
    const a = await startAuthority({ db: dir.file('a.db'), env: { NODE_OPTIONS: '' } });
    const line = sizingLine(a.proc.stdout);
    expect(line).toMatchObject({ heapGrowthPercent: 50, heapGrowthFrom: 'default', nodeHeapFlags: [] });
    expect(line.heapLimitMb).toBeGreaterThan(0);
  });

  it("names node's own heap flags, and leaves a --heap-growing-percent given to node in force", async () => {
    // V8's growth flag is not allowed in NODE_OPTIONS: only on node's command line.
    const a = await startAuthority({ db: dir.file('b.db'), env: { NODE_OPTIONS: '--max-semi-space-size=32' }, nodeArgs: ['--heap-growing-percent=80'] });
    expect(sizingLine(a.proc.stdout)).toMatchObject({ heapGrowthPercent: 80, heapGrowthFrom: 'node-flag', nodeHeapFlags: ['--heap-growing-percent=80', '--max-semi-space-size=32'] });
  });

  it('takes TASKSHARD_HEAP_GROWTH_PERCENT (0: V8 decides) and refuses both ways at once, exit 2', async () => {
    const a = await startAuthority({ db: dir.file('c.db'), env: { NODE_OPTIONS: '', TASKSHARD_HEAP_GROWTH_PERCENT: '0' } });
    expect(sizingLine(a.proc.stdout)).toMatchObject({ heapGrowthPercent: 'v8-default', heapGrowthFrom: 'env' });
    const both = spawnSync(process.execPath, ['--heap-growing-percent=80', cliPath, 'server', '--db', dir.file('d.db'), '--heap-growth-percent', '30'], { env: { ...process.env, NODE_OPTIONS: '', TASKSHARD_TOKEN: '' }, encoding: 'utf8', timeout: 20_000 });
    expect(both.status).toBe(2);
    expect(both.stderr).toContain("--heap-growth-percent and node's --heap-growing-percent=80 both set the heap growth; give one");
  });
});
