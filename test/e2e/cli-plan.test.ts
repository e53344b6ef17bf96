import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'taskshard-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

interface PolicyJson {
  makespanSec: number;
  buildTimeSec: number;
  runnerTimeSec: number;
}

interface CountJson {
  peers: number;
  lowerBoundSec: number;
  makespanSec: number;
  buildTimeSec: number;
  runnerTimeSec: number;
  perPeer: { peerId: string; arrivalSec: number; readySec: number; savedSec: number; steps: { stepId: string; startSec: number; endSec: number }[] }[];
  policies: Record<string, PolicyJson>;
  savedAgainst: Record<string, { runnerTimeSec: number; buildTimeSec: number }>;
}

interface PlanJson {
  steps: number;
  criticalPath: string[];
  uniqueWorkSec: number;
  durationSources: Record<string, number>;
  arrivalsSec: number[];
  universeSec: number;
  recommendedPeers: number;
  counts: CountJson[];
}

function planJson(args: string[]): PlanJson {
  const result = runCli(['plan', ...args, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as PlanJson;
}

const chain10 = (): string =>
  file('chain10.json', JSON.stringify({ id: 'chain', universe: '//u/...', steps: Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, target: `//s${i}`, estimateSec: 60, needs: i === 0 ? [] : [`s${i - 1}`] })) }));

describe('taskshard plan', () => {
  it('prints who builds what, the makespan, and build time and runner time against the baselines (example schema, 3 peers)', () => {
    const result = runCli(['plan', '--schema', 'schemas/example.json', '--peers', '3']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain('plan for schema "monorepo": 8 steps, 3 peers arriving together; step durations: 8 from estimateSec');
    // The critical path runs on one peer back to back; the whole plan takes exactly the critical path.
    expect(out).toMatch(/p1: arrives 0:00:00, 5 steps, busy 39m00s, ready for its universe build at 0:39:00; saves 25m00s against building alone \(1h04m\)/);
    expect(out).toMatch(/0:00:00 -> 0:04:00 {2}protos/);
    expect(out).toContain('expected makespan: 39m00s (lower bound 39m00s: critical path 39m00s = protos -> common -> geometry -> perception -> tests');
    // Runner time: 3 peers × 39 min = 1h57m with taskshard; (b) and (a): 3 × 64 min = 3h12m.
    expect(out).toMatch(/^taskshard +39m00s +1h04m +1h57m$/m);
    expect(out).toMatch(/^\(b\) shared cache, schema order +1h04m +3h12m +3h12m$/m);
    expect(out).toMatch(/^\(a\) no cache, every peer builds all +1h04m +3h12m +3h12m$/m);
    expect(out).toContain('taskshard against (b) shared cache, schema order: runner time saves 1h15m (39.1%), build time saves 2h08m (66.7%)');
    expect(out).toMatch(/^runner time: .*waiting included/m);
  });

  it('--json: every step exactly once, needs respected, figures consistent in both units', () => {
    const plan = planJson(['--schema', 'schemas/example.json', '--peers', '3']);
    expect(plan.counts).toHaveLength(1);
    const count = plan.counts[0]!;
    const runs = count.perPeer.flatMap((p) => p.steps);
    expect(runs.map((r) => r.stepId).sort()).toEqual(['common', 'geometry', 'perception', 'planning', 'protos', 'simulator', 'tests', 'web']);
    const end = new Map(runs.map((r) => [r.stepId, r.endSec]));
    const needs: Record<string, string[]> = { common: ['protos'], geometry: ['common'], perception: ['common', 'geometry'], planning: ['common', 'geometry'], simulator: ['protos'], tests: ['perception', 'planning', 'simulator'] };
    for (const r of runs) for (const n of needs[r.stepId] ?? []) expect(r.startSec).toBeGreaterThanOrEqual(end.get(n)!);
    expect(plan.uniqueWorkSec).toBe(3840);
    expect(count.makespanSec).toBe(2340);
    expect(count.lowerBoundSec).toBe(2340);
    expect(plan.criticalPath).toEqual(['protos', 'common', 'geometry', 'perception', 'tests']);
    expect(count.policies['baseline-every-peer-builds-everything']).toEqual({ makespanSec: 3840, buildTimeSec: 3 * 3840, runnerTimeSec: 3 * 3840 });
    expect(count.buildTimeSec).toBe(3840);
    expect(count.runnerTimeSec).toBe(3 * 2340);
    expect(count.savedAgainst['baseline-shared-cache-schema-order']).toEqual({ runnerTimeSec: 3 * 3840 - 3 * 2340, buildTimeSec: 2 * 3840 });
    expect(count.perPeer.map((p) => p.savedSec)).toEqual([3840 - 2340, 3840 - 2340, 3840 - 2340]);
  });

  it('a 10-step chain on 10 peers: build time drops 90%, runner time not at all, and 1 peer is recommended', () => {
    const schema = chain10();
    const plan = planJson(['--schema', schema, '--peers', '1..10']);
    expect(plan.counts.map((c) => c.peers)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const ten = plan.counts[9]!;
    expect(ten.makespanSec).toBe(600);
    expect(ten.buildTimeSec).toBe(600);
    expect(ten.runnerTimeSec).toBe(6000);
    expect(ten.savedAgainst['baseline-shared-cache-schema-order']).toEqual({ runnerTimeSec: 0, buildTimeSec: 5400 });
    expect(plan.recommendedPeers).toBe(1);
    const text = runCli(['plan', '--schema', schema, '--peers', '1..10']).stdout;
    expect(text).toMatch(/^ +10 +10m00s +10m00s +1h40m +0s \(0%\) +/m);
    expect(text).toContain('recommended: 1 peer, the smallest count whose makespan is within 5% of the best (10m00s at 1)');
  });

  it('--arrivals staggers the peers and --universe-sec adds each universe build to runner time', () => {
    const schema = chain10();
    // p2 arrives 1 s in and waits for the whole chain p1 builds: it would have needed 600 s alone and spends 599 s: saves 1 s.
    const plan = planJson(['--schema', schema, '--peers', '2', '--arrivals', '0,1', '--universe-sec', '30']);
    expect(plan.arrivalsSec).toEqual([0, 1]);
    expect(plan.universeSec).toBe(30);
    const count = plan.counts[0]!;
    expect(count.perPeer.map((p) => [p.peerId, p.arrivalSec, p.readySec, p.savedSec])).toEqual([['p1', 0, 600, 0], ['p2', 1, 600, 1]]);
    expect(count.runnerTimeSec).toBe(600 + 599 + 2 * 30);
    const text = runCli(['plan', '--schema', schema, '--arrivals', '0,1']).stdout;
    expect(text).toContain('2 peers arriving at 0s, 1s (later peers with the last)');
    expect(text).toContain('p2: arrives 0:00:01, 0 steps, busy 0s, ready for its universe build at 0:10:00; saves 1s against building alone (10m00s)');
  });

  it('takes measured durations from --durations; unlisted steps keep estimateSec, steps without one get 60 s', () => {
    const schema = file('s.json', JSON.stringify({ id: 'small', universe: '//u/...', steps: [{ id: 'a', target: '//a' }, { id: 'b', target: '//b', estimateSec: 100 }, { id: 'c', target: '//c', needs: ['a'] }] }));
    const durations = file('d.json', JSON.stringify({ a: 500 }));
    const plan = planJson(['--schema', schema, '--peers', '2', '--durations', durations]);
    expect(plan.durationSources).toEqual({ 'durations-file': 1, estimateSec: 1, default: 1 });
    expect(plan.uniqueWorkSec).toBe(500 + 100 + 60);
    expect(plan.counts[0]!.makespanSec).toBe(560);
    expect(plan.counts[0]!.perPeer[0]!.steps.map((s) => s.stepId)).toEqual(['a', 'c']);
    expect(plan.counts[0]!.perPeer[1]!.steps.map((s) => s.stepId)).toEqual(['b']);
    const withoutFile = planJson(['--schema', schema, '--peers', '2']);
    expect(withoutFile.uniqueWorkSec).toBe(60 + 100 + 60);
  });

  it('a durations file naming a removed step gets a located warning, and the plan still runs', () => {
    const durations = file('old-d.json', '{\n  "protos": 10,\n  "legacy": 5\n}\n');
    const result = runCli(['plan', '--schema', 'schemas/example.json', '--peers', '2', '--durations', durations, '--json']);
    expect(result.code).toBe(0);
    expect(result.stderr.trim()).toBe(`warning: ${durations}:3:3: legacy: schema "monorepo" has no step "legacy": a removed step? ignored [unknown-step]`);
    expect((JSON.parse(result.stdout) as PlanJson).durationSources).toEqual({ 'durations-file': 1, estimateSec: 7, default: 0 });
  });

  it('exits 2 with the located schema message on a bad schema', () => {
    const bad = file('bad.json', JSON.stringify({ universe: '//u', steps: [{ id: 'common', target: '//c' }, { id: 'b', target: '//b', needs: ['comon'] }] }, null, 2));
    const result = runCli(['plan', '--schema', bad, '--peers', '2']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toBe(`${bad}:12:9: steps[1].needs[0]: unknown step "comon" (did you mean "common"?) [unknown-need]`);
    const missing = runCli(['plan', '--schema', join(dir, 'nope.json'), '--peers', '2']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe(`${join(dir, 'nope.json')}: cannot read: no such file [read]`);
  });

  it('exits 2 with located lines on a bad durations file', () => {
    const durations = file('bad-d.json', '{\n  "protos": 10,\n  "protoss": 5,\n  "web": 0\n}\n');
    const result = runCli(['plan', '--schema', 'schemas/example.json', '--peers', '2', '--durations', durations]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([`${durations}:4:3: web: must be greater than 0 (seconds) [min]`]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 2 on usage errors', () => {
    expect(runCli(['plan', '--schema', 'schemas/example.json']).code).toBe(2);
    expect(runCli(['plan', '--schema', 'schemas/example.json', '--peers', '0']).code).toBe(2);
    expect(runCli(['plan', '--peers', '3']).code).toBe(2);
    const reversed = runCli(['plan', '--schema', 'schemas/example.json', '--peers', '5..2']);
    expect(reversed.code).toBe(2);
    expect(reversed.stderr).toContain('the range 5..2 is empty: write it low..high');
    const badArrival = runCli(['plan', '--schema', 'schemas/example.json', '--arrivals', '0,x']);
    expect(badArrival.code).toBe(2);
    expect(badArrival.stderr).toContain('arrival 2 ("x"): expected seconds from 0 to');
    expect(runCli(['plan', '--schema', 'schemas/example.json', '--peers', '2', '--universe-sec', '-1']).code).toBe(2);
  });
});
