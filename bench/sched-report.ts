import { formatDuration } from '../server/sim/sim-format.js';
import type { PolicyName, PolicySummary, SimReport } from '../server/sim/sim-types.js';

/** Table and JSON forms of simulator reports for `npm run bench:sched`. */

const shortPolicy: Record<PolicyName, string> = {
  taskshard: 'taskshard',
  'baseline-every-peer-builds-everything': 'every peer builds all',
  'baseline-task-director': 'Task Director policy',
};

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const s1 = (ms: number): number => Math.round(ms / 100) / 10;

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

export function reportTable(reports: readonly SimReport[]): string {
  const header = ['workload', 'peers', 'cohorts', 'policy', 'executed/unique', 'makespan/LB mean', 'max', 'ready mean', 'p95', 'max', 'aborted'];
  const widths = [20, 5, 7, 22, 15, 16, 6, 10, 8, 8, 7];
  const lines = [header.map((h, i) => pad(h, widths[i]!, i !== 0 && i !== 3)).join('  ')];
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const report of reports) {
    report.summaries.forEach((s: PolicySummary, i) => {
      const cells = [
        i === 0 ? report.workload : '',
        i === 0 ? String(report.peers) : '',
        i === 0 ? String(report.cohorts.length) : '',
        shortPolicy[s.policy],
        s.executedOverUnique.toFixed(3),
        s.makespanOverLowerBound.mean.toFixed(3),
        s.makespanOverLowerBound.max.toFixed(3),
        formatDuration(s.timeToUniverseMs.mean),
        formatDuration(s.timeToUniverseMs.p95),
        formatDuration(s.timeToUniverseMs.max),
        String(s.abortedRuns),
      ];
      lines.push(cells.map((c, j) => pad(c, widths[j]!, j !== 0 && j !== 3)).join('  '));
    });
  }
  return lines.join('\n');
}

/** The machine-readable form: ratios, seconds (one decimal), per-peer time to universe. */
export function reportJson(report: SimReport): Record<string, unknown> {
  return {
    workload: report.workload,
    seed: report.seed,
    peers: report.peers,
    steps: report.steps,
    cohorts: report.cohorts.length,
    uniqueWorkSec: s1(report.uniqueWorkMs),
    lowerBoundSec: report.cohorts.map((c) => s1(c.lowerBoundMs)),
    policies: Object.fromEntries(
      report.summaries.map((s) => [
        s.policy,
        {
          executedWorkSec: s1(s.executedWorkMs),
          executedOverUnique: r3(s.executedOverUnique),
          makespanOverLowerBound: { mean: r3(s.makespanOverLowerBound.mean), max: r3(s.makespanOverLowerBound.max) },
          timeToUniverseSec: { mean: s1(s.timeToUniverseMs.mean), p50: s1(s.timeToUniverseMs.p50), p95: s1(s.timeToUniverseMs.p95), max: s1(s.timeToUniverseMs.max) },
          abortedRuns: s.abortedRuns,
          perPeerTimeToUniverseSec: Object.fromEntries(Object.entries(s.perPeerTimeToUniverseMs).map(([p, ms]) => [p, s1(ms)])),
        },
      ]),
    ),
  };
}
