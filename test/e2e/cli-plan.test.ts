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

interface PlanJson {
  steps: number;
  peers: number;
  perPeer: { peerId: string; steps: { stepId: string; startSec: number; endSec: number }[] }[];
  makespanSec: number;
  lowerBoundSec: number;
  criticalPath: string[];
  uniqueWorkSec: number;
  everyPeerBuildsEverything: { perPeerSec: number; machineSec: number };
  taskshard: { machineSec: number };
  savedMachineSec: number;
  durationSources: Record<string, number>;
}

function planJson(args: string[]): PlanJson {
  const result = runCli(['plan', ...args, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as PlanJson;
}

describe('taskshard plan', () => {
  it('prints who builds what in which order, the makespan and the saving (example schema, 3 peers)', () => {
    const result = runCli(['plan', '--schema', 'schemas/example.json', '--peers', '3']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain('plan for schema "monorepo": 8 steps, 3 peers arriving together; step durations: 8 from estimateSec');
    // The critical path runs on one peer back to back; the whole plan takes exactly the critical path.
    expect(out).toMatch(/p1: 5 steps, busy 39m00s/);
    expect(out).toMatch(/0:00:00 -> 0:04:00 {2}protos/);
    expect(out).toContain('expected makespan: 39m00s (lower bound 39m00s: critical path 39m00s = protos -> common -> geometry -> perception -> tests');
    expect(out).toContain('every peer building everything: 1h04m per peer, 3h12m machine time');
    expect(out).toContain('with taskshard: 1h04m machine time; saves 2h08m (66.7%) of machine time, and each peer starts its universe build 25m00s sooner');
  });

  it('--json: every step exactly once, needs respected, figures consistent', () => {
    const plan = planJson(['--schema', 'schemas/example.json', '--peers', '3']);
    const runs = plan.perPeer.flatMap((p) => p.steps);
    expect(runs.map((r) => r.stepId).sort()).toEqual(['common', 'geometry', 'perception', 'planning', 'protos', 'simulator', 'tests', 'web']);
    const end = new Map(runs.map((r) => [r.stepId, r.endSec]));
    const needs: Record<string, string[]> = { common: ['protos'], geometry: ['common'], perception: ['common', 'geometry'], planning: ['common', 'geometry'], simulator: ['protos'], tests: ['perception', 'planning', 'simulator'] };
    for (const r of runs) for (const n of needs[r.stepId] ?? []) expect(r.startSec).toBeGreaterThanOrEqual(end.get(n)!);
    expect(plan.uniqueWorkSec).toBe(3840);
    expect(plan.makespanSec).toBe(2340);
    expect(plan.lowerBoundSec).toBe(2340);
    expect(plan.criticalPath).toEqual(['protos', 'common', 'geometry', 'perception', 'tests']);
    expect(plan.everyPeerBuildsEverything).toEqual({ perPeerSec: 3840, machineSec: 3 * 3840 });
    expect(plan.taskshard.machineSec).toBe(3840);
    expect(plan.savedMachineSec).toBe(2 * 3840);
  });

  it('takes measured durations from --durations; unlisted steps keep estimateSec, steps without one get 60 s', () => {
    const schema = file('s.json', JSON.stringify({ id: 'small', universe: '//u/...', steps: [{ id: 'a', target: '//a' }, { id: 'b', target: '//b', estimateSec: 100 }, { id: 'c', target: '//c', needs: ['a'] }] }));
    const durations = file('d.json', JSON.stringify({ a: 500 }));
    const plan = planJson(['--schema', schema, '--peers', '2', '--durations', durations]);
    expect(plan.durationSources).toEqual({ 'durations-file': 1, estimateSec: 1, default: 1 });
    expect(plan.uniqueWorkSec).toBe(500 + 100 + 60);
    expect(plan.makespanSec).toBe(560);
    expect(plan.perPeer[0]!.steps.map((s) => s.stepId)).toEqual(['a', 'c']);
    expect(plan.perPeer[1]!.steps.map((s) => s.stepId)).toEqual(['b']);
    const withoutFile = planJson(['--schema', schema, '--peers', '2']);
    expect(withoutFile.uniqueWorkSec).toBe(60 + 100 + 60);
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
    expect(result.stderr.trim().split('\n')).toEqual([
      `${durations}:4:3: web: must be greater than 0 (seconds) [min]`,
      `${durations}:3:3: protoss: schema "monorepo" has no step "protoss" (did you mean "protos"?) [unknown-step]`,
    ]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 2 on usage errors', () => {
    expect(runCli(['plan', '--schema', 'schemas/example.json']).code).toBe(2);
    expect(runCli(['plan', '--schema', 'schemas/example.json', '--peers', '0']).code).toBe(2);
    expect(runCli(['plan', '--peers', '3']).code).toBe(2);
  });
});
