import { describe, expect, it } from 'vitest';
import { substituteArgv } from '../../peer/argv-template.js';
import { backoffDelayMs, defaultBackoff } from '../../peer/backoff.js';
import { OutputTail } from '../../peer/output-tail.js';
import { failedStepLine, formatDuration, summaryLine, tailLines, waitingLine } from '../../peer/report.js';
import { localBuildOrder } from '../../peer/step-order.js';
import type { StepDef } from '../../shared/schema-file.js';

describe('substituteArgv', () => {
  it('replaces {target} and {step} inside each element, every occurrence, nothing else', () => {
    expect(substituteArgv(['build', '{target}', '--config={step}', '{step}:{step}', '{other}', '{TARGET}'], { target: '//a/...', step: 'a' })).toEqual([
      'build',
      '//a/...',
      '--config=a',
      'a:a',
      '{other}',
      '{TARGET}',
    ]);
  });

  it('keeps shell syntax in a value as one literal argument', () => {
    expect(substituteArgv(['{target}'], { target: '//x && rm -rf / $(id)', step: 's' })).toEqual(['//x && rm -rf / $(id)']);
    // A value that itself looks like a placeholder is not expanded again.
    expect(substituteArgv(['{target}'], { target: '{step}', step: 's' })).toEqual(['{step}']);
  });
});

describe('backoffDelayMs', () => {
  it('doubles from 250 ms to a 5 s cap, each delay between half and all of the nominal', () => {
    const nominal = [250, 500, 1000, 2000, 4000, 5000, 5000];
    expect(nominal.map((_, i) => backoffDelayMs(i, () => 0))).toEqual(nominal.map((n) => n / 2));
    expect(nominal.map((_, i) => backoffDelayMs(i, () => 0.999999))).toEqual(nominal);
    expect(backoffDelayMs(2, () => 0.5)).toBe(750);
  });

  it('uses the injected randomness for jitter, and tolerates silly inputs', () => {
    const seq = [0.1, 0.9, 0.4];
    let i = 0;
    const delays = [0, 0, 0].map((_, n) => backoffDelayMs(n, () => seq[i++]!));
    expect(delays).toEqual([138, 475, 700]);
    expect(backoffDelayMs(-3, () => 0)).toBe(125);
    expect(backoffDelayMs(1e9, () => 0)).toBe(defaultBackoff.capMs / 2);
    expect(backoffDelayMs(0, () => 7, { baseMs: 100, capMs: 100 })).toBe(100);
  });
});

describe('OutputTail', () => {
  it('keeps exactly the last maxChars characters across chunks', () => {
    const tail = new OutputTail(10);
    tail.push('0123456789abc');
    expect(tail.text()).toBe('3456789abc');
    tail.push('de');
    tail.push('');
    tail.push('f');
    expect(tail.text()).toBe('6789abcdef');
    const big = new OutputTail(4096);
    for (let i = 0; i < 10_000; i++) big.push(`line ${i}\n`);
    expect(big.text()).toHaveLength(4096);
    expect(big.text().endsWith('line 9999\n')).toBe(true);
  });
});

describe('localBuildOrder', () => {
  const step = (id: string, needs: string[] = []): StepDef => ({ id, target: `//${id}`, needs });

  it('puts needs first, ties in schema order, and skips what is built', () => {
    const steps = [step('planning', ['common']), step('test'), step('common'), step('sim', ['planning', 'test'])];
    expect(localBuildOrder(steps).map((s) => s.id)).toEqual(['test', 'common', 'planning', 'sim']);
    expect(localBuildOrder(steps, new Set(['common', 'test'])).map((s) => s.id)).toEqual(['planning', 'sim']);
    expect(localBuildOrder(steps, new Set(['planning', 'test', 'common', 'sim']))).toEqual([]);
  });
});

describe('report lines', () => {
  it('formats durations for humans', () => {
    expect([850, 12_340, 65_000, 3_725_000].map(formatDuration)).toEqual(['850 ms', '12.3 s', '1m 05s', '1h 02m']);
  });

  it('names the failing step, peer, exit code and reason; indents the log tail', () => {
    expect(failedStepLine({ stepId: 'common', peerId: 'ci-7', exitCode: 3, reason: 'failed 2 times' })).toBe('step common FAILED on peer ci-7 with exit 3 (failed 2 times)');
    expect(failedStepLine({ stepId: 'x', peerId: null, exitCode: null })).toBe('step x FAILED on no peer with no exit code');
    expect(tailLines('a\r\nb\n\n')).toEqual(['  | a', '  | b']);
    expect(tailLines('1\n2\n3', 2)).toEqual(['  | 2', '  | 3']);
  });

  it('summarizes waits and completion', () => {
    expect(waitingLine({ type: 'wait', cohortId: 'c', running: [{ stepId: 'a', peerId: 'p2' }], unresolved: 1 })).toBe('waiting on step a held by peer p2 (1 step unresolved)');
    expect(waitingLine({ type: 'wait', cohortId: 'c', running: [], unresolved: 3 })).toBe('waiting: nothing assignable yet (3 steps unresolved)');
    // With the lease's age from the authority (`heldMs`).
    expect(waitingLine({ type: 'wait', cohortId: 'c', running: [{ stepId: 'a', peerId: 'p2', heldMs: 754_000 }, { stepId: 'b', peerId: 'p3', heldMs: 850 }], unresolved: 2 })).toBe(
      'waiting on step a held by peer p2 for 12m 34s, step b held by peer p3 for 850 ms (2 steps unresolved)',
    );
    const summary = { builtHere: ['a', 'b'], builtByOthers: [{ stepId: 'c', peerId: 'p2' }], fromMemo: ['d'], failed: [], savedSec: 90 };
    // An authority that does not report runner time: the line says so instead of calling build time "time saved".
    expect(summaryLine(summary, 'succeeded')).toBe(
      'complete (succeeded): built here 2 (a, b) / built by others 1 / from memo 1 / failed 0 / build time saved 1m 30s / runner time saved: not reported by this authority',
    );
    expect(summaryLine({ ...summary, builtSec: 60, aloneSec: 150, spentSec: 100 }, 'succeeded')).toBe(
      'complete (succeeded): built here 2 (a, b) / built by others 1 / from memo 1 / failed 0 / build time saved 1m 30s / runner time 1m 40s building and waiting vs 2m 30s building alone: saved 50.0 s',
    );
    // A peer that waited 45 s for a cohort whose steps it could have built alone in 30 s is not told it saved anything.
    expect(summaryLine({ ...summary, savedSec: 20, builtSec: 10, aloneSec: 30, spentSec: 75 }, 'succeeded')).toContain(
      '/ build time saved 20.0 s / runner time 1m 15s building and waiting vs 30.0 s building alone: NEGATIVE, 45.0 s more than building alone (waiting for the cohort cost more than it saved)',
    );
  });
});
