import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Write } from '../server/core/records.js';
import { SqliteStore } from '../server/store/sqlite-store.js';
import { CoreHarness } from '../test/helpers/core-harness.js';
import { dagSchema } from '../test/helpers/schemas.js';

/**
 * What group commit saves in the store alone (issue 17, docs/performance.md "Rows per
 * assignment"): the real core's writes for 10 peers working through one cohort of 1,500
 * independent steps, committed to a fresh SQLite file one transaction per input, then one per
 * group of 2, 5 and 10 inputs (the same writes), twice each, with `--sync normal` and `full`.
 * Prints CPU and wall µs per assignment of the commits. `npx tsx bench/group-commit-probe.ts`
 */
function inputs(peers: number, steps: number): Write[][] {
  const deps: Record<string, string[]> = {};
  for (let i = 0; i < steps; i++) deps[`s${i}`] = [];
  const h = new CoreHarness(dagSchema(deps));
  const ids = Array.from({ length: peers }, (_, i) => `p${i}`);
  const out: Write[][] = ids.map((p) => [...h.hello(p).writes]);
  for (let progressed = true; progressed; ) {
    progressed = false;
    for (const p of ids) {
      const a = h.lastAssign(p);
      const o = a ? h.finish(p, a.leaseId, a.stepId, true, { durationMs: 1 }) : null;
      if (o === null || o.writes.length === 0) continue;
      out.push([...o.writes]);
      progressed = true;
    }
  }
  return out;
}

const batches = inputs(10, 1500);
const assignments = batches.flat().filter((w) => w.table === 'lease' && w.row.end === null).length;
const round1 = (v: number): number => Math.round(v * 10) / 10;
for (const synchronous of ['normal', 'full'] as const) {
  for (const group of [1, 2, 5, 10, 1, 2, 5, 10]) {
    const dir = mkdtempSync(join(tmpdir(), 'taskshard-group-commit-'));
    const store = new SqliteStore(join(dir, 'probe.db'), { synchronous });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < batches.length; i += group) store.scheduler.apply(batches.slice(i, i + group).flat());
    const cpu = process.cpuUsage(cpu0);
    const wallUs = (performance.now() - t0) * 1000;
    store.close();
    rmSync(dir, { recursive: true, force: true });
    console.log(`--sync ${synchronous}, ${group} input(s) per commit: ${round1((cpu.user + cpu.system) / assignments)} µs CPU, ${round1(wallUs / assignments)} µs wall per assignment (${assignments} assignments)`);
  }
}
