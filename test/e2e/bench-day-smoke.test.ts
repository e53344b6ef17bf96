import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

/**
 * `npm run bench -- --day N` with tiny parameters, so it cannot rot. Only the
 * shape and the counts are checked: its speed figures belong in the benchmark
 * output (docs/performance.md), never in a test.
 */
function runDay(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench/authority-bench.ts'), ...args], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench --day timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, 150_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench -- --day', () => {
  it('drives N cohorts through a real authority and prints one JSON line with every figure', async () => {
    const result = await runDay(['--day', '40', '--concurrency', '4', '--retention-sec', '2', '--history-sec', '3', '--history-fill', '50', '--no-build']);
    expect(result.stderr).not.toContain('Error');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Record<string, any>;
    expect(r).toMatchObject({ bench: 'day', cohorts: 40, peersPerCohort: 3, stepsPerCohort: 4, assigns: 160, errors: {}, history: { cohorts: 50 } });
    expect(r.deciles).toHaveLength(10);
    expect(r.deciles.map((d: { cohorts: number }) => d.cohorts)).toEqual([4, 8, 12, 16, 20, 24, 28, 32, 36, 40]);
    // Rows per assignment from the real authority's store (issue 17): no event row restates a lease row
    // (left: a cohort's created/complete and its 3 peers joining and leaving, 8 per 4 assignments).
    expect(r.rowsPerAssign).toMatchObject({ event: 2, lease: 2 });
    expect(r.rowsPerAssign.step).toBeLessThanOrEqual(2);
    for (const key of ['cohortsPerSecFirst10', 'cohortsPerSecLast10', 'ratio', 'longestBlockMs', 'idleProcessBlockMs', 'restartMs', 'cliStartMs']) expect(typeof r[key]).toBe('number');
    // The driver yields the cores while it drives (it stands for peers on other machines), and the
    // longest stall is split into the authority's running time and its wait for a CPU (Linux).
    expect(r).toMatchObject({ driverNice: 10 });
    expect(typeof r.longestStall.ms).toBe('number');
    if (process.platform === 'linux') {
      expect(typeof r.longestStall.runningMs).toBe('number');
      expect(typeof r.longestStall.waitingMs).toBe('number');
      // The authority's CPU by thread: the event loop did the work, its other threads the rest.
      expect(r.cpuSec.main).toBeGreaterThan(0);
      expect(typeof r.cpuSec.other).toBe('number');
      expect(r.deciles.every((d: { cpuSec: unknown }) => d.cpuSec !== null)).toBe(true);
    }
  }, 180_000);

  it('refuses a bad N with exit 2 and the usage line', async () => {
    const result = await runDay(['--day', 'lots']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--day: expected an integer from 10 to 1000000');
    expect(result.stdout).toBe('');
  });
});
