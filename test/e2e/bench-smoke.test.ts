import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

/**
 * The benchmark scripts with tiny parameters, so they cannot rot. Only the
 * shape and the counts are checked: speed figures belong in the benchmark
 * output, never in a test.
 */
const dir = mkdtempSync(join(tmpdir(), 'taskshard-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a bench script under tsx, as `npm run` does; `nofile` lowers `ulimit -n` (soft and hard) first. */
function runScript(script: string, args: string[], options: { timeoutMs?: number; nofile?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const argv = [process.execPath, '--import', 'tsx', join(repoRoot, script), ...args];
  return new Promise((resolve, reject) => {
    const child =
      options.nofile === undefined
        ? spawn(argv[0]!, argv.slice(1), { cwd: repoRoot })
        : spawn('sh', ['-c', `ulimit -n ${options.nofile} && exec "$0" "$@"`, ...argv], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function oneJsonLine(stdout: string): Record<string, any> {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, any>;
}

describe('npm run bench (tiny)', () => {
  it('load: echo baseline, then one authority from dist serving a cold and a warm pass; one JSON line with every figure per pass and run and the medians', async () => {
    // 40 assignments per pass: the warm pass right after the cold one (the default waits for 10,000, or 20 passes).
    // Two passes, each connecting its own peers: about 20 s alone, more beside the rest of the suite (hence the timeout).
    const result = await runScript('bench/authority-bench.ts', ['--peers', '20', '--cohort-size', '5', '--steps', '10', '--warm-up-assignments', '40', '--window-sec', '1', '--generators', '2', '--repeat', '1', '--no-build', '--max-sec', '80']);
    expect(result.stderr).not.toMatch(/bench: (timed out|.*failed)/);
    expect(result.code).toBe(0);
    const r = oneJsonLine(result.stdout);
    expect(r).toMatchObject({ bench: 'authority', mode: 'load', repeat: 1, problems: [] });
    expect(r.passes).toMatch(/^cold and warm: /);
    expect(r.shapes).toHaveLength(1);
    const shape = r.shapes[0];
    expect(shape).toMatchObject({ protocol: 'v1', peers: 20, cohortSize: 5, cohorts: 4, stepsPerCohort: 10, assignmentsPerRun: 40, passesPerRun: 2, warmUpAssignments: 40, problems: [] });
    expect(shape.runs).toHaveLength(1);
    for (const key of ['echoMessagesPerSec', 'echoCpuUsPerMessage', 'echoLatencyP99Ms', 'rssPerConnectedPeerKb']) expect(typeof shape.median[key], key).toBe('number');
    const figures = ['assignmentsPerSec', 'cpuUsPerAssignment', 'framesPerAssignment', 'rowsPerAssignment', 'latencyP99Ms', 'throughputOverEcho', 'cpuPerAssignmentOverEchoCpuPerMessage', 'latencyP99OverEcho'];
    for (const pass of ['cold', 'warm']) {
      for (const key of figures) expect(typeof shape.median[pass][key], `${pass}.${key}`).toBe('number');
      // Every assignment writes at least its lease and step rows; every assignment frame is a frame.
      expect(shape.median[pass].rowsPerAssignment).toBeGreaterThan(1);
      expect(shape.median[pass].framesPerAssignment).toBeGreaterThanOrEqual(1);
      expect(shape.median[pass].cpuUsPerAssignment).toBeGreaterThan(0);
    }
    // The main thread's share from /proc schedstat (Linux, as here and in CI).
    expect(shape.median.warm.mainThreadCpuUsPerAssignment).toBeGreaterThan(0);
    expect(typeof shape.median.warm.mainThreadWaitUsPerAssignment).toBe('number');
    // The warm pass does the cold pass's work again (its own cohorts: the same frames per assignment).
    expect(shape.median.warm.framesPerAssignment).toBe(shape.median.cold.framesPerAssignment);
    for (const key of ['cpuUsPerAssignment', 'assignmentsPerSec', 'latencyP99Ms']) expect(typeof shape.median.warmOverCold[key], key).toBe('number');
    expect(shape.median.echoCpuUsPerMessage).toBeGreaterThan(0);
    expect(r.targets['20x5x10.cpu']).toMatchObject({ judgedOn: 'warm' });
    expect(typeof r.targets['20x5x10.cpu'].met).toBe('boolean');
    expect(typeof r.targets['20x5x10.cpu'].cold).toBe('number');
    expect(typeof r.loadAverage1m.before).toBe('number');
  }, 95_000);

  it('load --protocol task-director --cold-only: the same client in the original wire format, every task assigned once, one pass', async () => {
    const result = await runScript('bench/authority-bench.ts', ['--protocol', 'task-director', '--cold-only', '--peers', '10', '--cohort-size', '10', '--steps', '30', '--window-sec', '1', '--generators', '1', '--repeat', '1', '--no-build', '--max-sec', '80']);
    expect(result.code).toBe(0);
    const r = oneJsonLine(result.stdout);
    expect(r.passes).toMatch(/^cold only: /);
    const shape = r.shapes[0];
    expect(shape).toMatchObject({ protocol: 'task-director', peers: 10, cohorts: 1, assignmentsPerRun: 30, passesPerRun: 1, problems: [] });
    expect(shape.median.cold.rowsPerAssignment).toBeGreaterThan(1);
    expect(shape.median.warm).toBeNull();
    expect(shape.median.warmOverCold).toBeNull();
  }, 95_000);

  it('--idle: idle connections to both servers, RSS per connection', async () => {
    const result = await runScript('bench/authority-bench.ts', ['--idle', '20', '--idle-hold-sec', '1', '--generators', '2', '--no-build', '--max-sec', '80']);
    expect(result.code).toBe(0);
    const r = oneJsonLine(result.stdout);
    expect(r).toMatchObject({ bench: 'authority', mode: 'idle', peers: 20 });
    expect(r.authority.peersHoldingAStep).toBe(20);
    expect(r.problems).toEqual([]);
    expect(r.target.rssPerPeerKbAtMost).toBe(10);
    expect(typeof r.authority.rssPerPeerKb).toBe('number');
    expect(typeof r.baseline.rssPerConnectionKb).toBe('number');
    // Read twice: right after the joins and after the hold (the target is judged on the latter).
    expect(r.holdSec).toBe(1);
    expect(typeof r.authority.rssPerPeerRightAfterJoinKb).toBe('number');
    expect(r.authority.heapMb.held.total).toBeGreaterThan(0);
  });

  it('--abuse: the authority clean and under each attack (bad frames, expensive frames, idle flood); well-behaved peers all complete', async () => {
    const result = await runScript('bench/authority-bench.ts', ['--abuse', '3', '--peers', '20', '--cohort-size', '5', '--steps', '10', '--generators', '1', '--window-sec', '1', '--no-build', '--max-sec', '110'], { timeoutMs: 115_000 });
    expect(result.code).toBe(0);
    const r = oneJsonLine(result.stdout);
    expect(r).toMatchObject({ bench: 'authority', mode: 'abuse', peers: 20, problems: [] });
    expect(r.baseline.completes).toBe(20);
    expect(Object.keys(r.attacks)).toEqual(['bad-frames', 'expensive', 'idle']);
    for (const attack of ['bad-frames', 'expensive', 'idle']) {
      expect(r.attacks[attack].completes, attack).toBe(20);
      expect(r.attacks[attack].errors, attack).toEqual({});
      expect(r.attacks[attack].abuse.connectionsOpened, attack).toBeGreaterThan(0);
      expect(typeof r.attacks[attack].ratio.latencyP99OverClean).toBe('number');
    }
    expect(r.attacks['bad-frames'].abuse.framesSent).toBeGreaterThan(0);
    expect(r.attacks.expensive.abuse.framesSent).toBeGreaterThan(0);
    expect(r.attacks.idle.abuse.framesSent).toBe(0);
    expect(typeof r.target.worstLatencyP99OverClean).toBe('number');
  }, 120_000);

  it('refuses a usage error with exit 2 and the usage line', async () => {
    const result = await runScript('bench/authority-bench.ts', ['--peers', 'many']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--peers: expected an integer');
    expect(result.stderr).toContain('[--warm-up-assignments A | --cold-only]');
    expect(result.stdout).toBe('');
  });

  it('fails with a clear message when the file-descriptor limit cannot hold the connections', async () => {
    const result = await runScript('bench/authority-bench.ts', ['--peers', '1000', '--no-build'], { nofile: 300 });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('not enough file descriptors: 1000 connections need ulimit -n >= 1256 in the server process, but the hard limit is 300');
    expect(result.stdout).toBe('');
  });
});

describe('npm run bench:original', () => {
  it('without a checkout of the original (or its packages) says what is missing and exits 0, measuring nothing', async () => {
    const result = await runScript('bench/original/original-bench.ts', ['--python', join(dir, 'no-python')]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('cannot run the original here, so nothing was measured');
    expect(result.stdout).toContain('no checkout of the original: pass --original DIR');
    expect(result.stdout).toContain(`no Python at ${join(dir, 'no-python')}`);
    const notACheckout = await runScript('bench/original/original-bench.ts', ['--original', dir]);
    expect(notACheckout.code).toBe(0);
    expect(notACheckout.stdout).toContain(`--original ${dir}: no server/manage.py`);
  });
});

describe('npm run demo', () => {
  it('an authority and three peers share the example schema; prints who built what and the saving in build time and runner time against the shared-cache baselines', async () => {
    // 1 ms per estimated second instead of the demo's 5: the same run, a fifth of the sleeping.
    const result = await runScript('scripts/demo.ts', ['--no-build', '--ms-per-estimate-sec', '1']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('each step sleeps 1 ms per estimated second');
    for (const peer of ['demo-a', 'demo-b', 'demo-c']) expect(result.stdout).toContain(`[${peer}] exit 0: every step resolved and the universe built`);
    const builders = [...result.stdout.matchAll(/^ {2}(\S+) +built by (demo-[abc]) /gm)];
    expect(builders.map((m) => m[1]).sort()).toEqual(['common', 'geometry', 'perception', 'planning', 'protos', 'simulator', 'tests', 'web']);
    expect(result.stdout).toMatch(/^measured here: build time [\d.]+ s \(each step built once; [\d.]+ s if every peer built everything\), runner time [\d.]+ s$/m);
    expect(result.stdout).toMatch(/^simulated on the same durations and join times: \(b\) shared remote cache, every job in schema order: build time [\d.]+ s, runner time [\d.]+ s; \(c\)/m);
    expect(result.stdout).toMatch(/^taskshard against \(b\): runner time (saves|COSTS) [\d.]+ s( more)? \(-?[\d.]+%\), build time saves [\d.]+ s \([\d.]+%\)/m);
    for (const peer of ['demo-a', 'demo-b', 'demo-c']) expect(result.stdout).toMatch(new RegExp(`^ {2}${peer}: building and waiting [\\d.]+ s, building every step alone [\\d.]+ s: (saves|COSTS) [\\d.]+ s`, 'm'));
    expect(result.stdout).toContain('per run of 3 jobs taskshard saves 1h15m of runner time (39.1%) and 2h08m of build time (66.7%) against a shared remote cache in schema order (b)');
  });
});

describe('npm run bench:sched', () => {
  it('runs every shipped workload: a table, then one JSON line with taskshard and the four baselines per workload', async () => {
    const result = await runScript('bench/sched-bench.ts', []);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const json = JSON.parse(lines[lines.length - 1]!) as { bench: string; workloads: { workload: string; policies: Record<string, { executedOverUnique: number; buildTimeSec: number; runnerTimeSec: number; perPeerTimeToUniverseSec: Record<string, number> }> }[] };
    expect(json.bench).toBe('sched');
    expect(json.workloads.map((w) => w.workload).sort()).toEqual(['ci-day', 'deep-chain', 'skewed', 'skewed-no-estimates', 'wide-flat']);
    for (const w of json.workloads) {
      expect(Object.keys(w.policies)).toEqual([
        'taskshard',
        'baseline-shared-cache-schema-order',
        'baseline-shared-cache-random-order',
        'baseline-every-peer-builds-everything',
        'baseline-task-director',
      ]);
      expect(w.policies.taskshard!.executedOverUnique).toBeGreaterThanOrEqual(1);
      for (const p of Object.values(w.policies)) {
        expect(p.runnerTimeSec).toBeGreaterThan(0);
        expect(Object.keys(p.perPeerTimeToUniverseSec).length).toBeGreaterThan(0);
      }
    }
    expect(result.stdout).toMatch(/^workload +peers +cohorts +policy +executed\/unique +build time +runner time/m);
    expect(result.stdout).toMatch(/^ {2}ci-day +vs \(b\) \S+ [\d.]+% \(\S+ [\d.]+%\); vs \(c\)/m);
  });

  it('--core-cost: the core per assignment in the two v1 shapes, without sockets or a store, and their ratio', async () => {
    const result = await runScript('bench/sched-bench.ts', ['--core-cost', '--repeat', '1']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const json = JSON.parse(lines[lines.length - 1]!) as { bench: string; shapes: { peers: number; cohortSize: number; steps: number; usPerAssignment: number; runs: { assignments: number; completes: number }[] }[]; oneCohortOverCohortsOf10: number };
    expect(json.bench).toBe('sched-core-cost');
    expect(json.shapes.map((s) => [s.peers, s.cohortSize, s.steps])).toEqual([
      [1000, 10, 100],
      [200, 200, 1000],
    ]);
    // Each run covers 10,000 assignments: one loop of 100 cohorts x 100 steps, ten loops of one cohort of 1,000.
    expect(json.shapes.map((s) => [s.runs[0]!.assignments, s.runs[0]!.completes])).toEqual([
      [10_000, 1000],
      [10_000, 2000],
    ]);
    for (const s of json.shapes) expect(s.usPerAssignment).toBeGreaterThan(0);
    expect(json.oneCohortOverCohortsOf10).toBeGreaterThan(0);
    // Cold: the first loop in a fresh process per shape, next to the warm figure.
    const cold = json as unknown as { shapes: { coldUsPerAssignment: number; coldRuns: number[] }[]; coldOneCohortOverCohortsOf10: number };
    for (const s of cold.shapes) expect(s.coldRuns).toEqual([s.coldUsPerAssignment]);
    expect(cold.coldOneCohortOverCohortsOf10).toBeGreaterThan(0);
    expect(result.stdout).toMatch(/^one cohort of 200 x 1000 over cohorts of 10 x 100: [\d.]+x the core's work per assignment \(cold: [\d.]+x\)$/m);
    const bad = await runScript('bench/sched-bench.ts', ['--core-cost', '--repeat', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--repeat must be an integer from 1 to 50, got "0"');
  });

  it('exits 2 with located lines on a bad workload file', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ name: 'bad', description: 'x', schema: { universe: '//u', steps: [{ id: 'a', target: '//a', needs: ['b'] }] }, durationsSec: { a: 5, c: 1 }, groups: [{ name: 'g', peers: 0, atSec: 0 }] }, null, 2));
    const result = await runScript('bench/sched-bench.ts', ['--workload', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:23:7: groups[0].peers: must be at least 1 [min]`);
    writeFileSync(bad, JSON.stringify({ name: 'bad', description: 'x', schema: { universe: '//u', steps: [{ id: 'a', target: '//a', needs: ['b'] }] }, groups: [{ name: 'g', peers: 1, atSec: 0 }] }, null, 2));
    const schemaProblem = await runScript('bench/sched-bench.ts', ['--workload', bad]);
    expect(schemaProblem.code).toBe(2);
    expect(schemaProblem.stderr).toContain(`${bad}:11:11: schema.steps[0].needs[0]: unknown step "b" (did you mean "a"?) [unknown-need]`);
    writeFileSync(bad, JSON.stringify({ name: 'bad', description: 'x', schema: { universe: '//u', steps: [{ id: 'a', target: '//a' }] }, durationsSec: { a: 5, c: 1 }, groups: [{ name: 'g', peers: 1, atSec: 0 }] }, null, 2));
    const durationProblem = await runScript('bench/sched-bench.ts', ['--workload', bad]);
    expect(durationProblem.code).toBe(2);
    expect(durationProblem.stderr).toContain(`${bad}:15:5: durationsSec.c: schema "bad" has no step "c" (did you mean "a"?) [unknown-step]`);
  });
});

describe('bench/profile-summary.ts', () => {
  it('charges samples by file and counts only the --from-sec/--to-sec window', async () => {
    // A synthetic V8 profile: 1 s in SQLite, then 1 s idle, then 1 s in the core (1 ms samples).
    const nodes = [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3, 4] },
      { id: 2, callFrame: { functionName: 'apply', url: 'file:///x/dist/server/store/sqlite-scheduler-store.js', lineNumber: 9 } },
      { id: 3, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
      { id: 4, callFrame: { functionName: 'handle', url: 'file:///x/dist/server/core/scheduler.js', lineNumber: 4 } },
    ];
    const samples = [...Array(1000).fill(2), ...Array(1000).fill(3), ...Array(1000).fill(4)];
    const file = join(dir, 'synthetic.cpuprofile');
    writeFileSync(file, JSON.stringify({ nodes, samples, timeDeltas: samples.map(() => 1000), startTime: 0, endTime: 3e6 }));
    const all = await runScript('bench/profile-summary.ts', [file]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('busy 2.00 s, idle 1.00 s');
    expect(all.stdout).toMatch(/50\.0%\s+SQLite store/);
    const late = await runScript('bench/profile-summary.ts', [file, '--from-sec', '1.5', '--timeline']);
    expect(late.code).toBe(0);
    expect(late.stdout).toContain('busy 1.00 s, idle 0.50 s');
    expect(late.stdout).toMatch(/100\.0%\s+scheduler core/);
    expect(late.stdout).toMatch(/1\.25 s\s+busy 0%/);
    expect((await runScript('bench/profile-summary.ts', [file, '--from-sec', '2', '--to-sec', '1'])).code).toBe(2);
  });
});
