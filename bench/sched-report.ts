import { formatDuration, formatPercent, formatSignedDuration, policyLabels } from '../server/sim/sim-format.js';
import { policyNames, type PolicyName, type PolicySummary, type SimReport } from '../server/sim/sim-types.js';

/** Table and JSON forms of simulator reports for `npm run bench:sched`. */

const shortPolicy: Record<PolicyName, string> = policyLabels;

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const s1 = (ms: number): number => Math.round(ms / 100) / 10;

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function summaryOf(report: SimReport, policy: PolicyName): PolicySummary {
  const found = report.summaries.find((s) => s.policy === policy);
  if (!found) throw new Error(`report ${report.workload} has no ${policy} summary`);
  return found;
}

/** What taskshard saves against one baseline, in both units. */
export function savingAgainst(report: SimReport, baseline: PolicyName): { buildMs: number; runnerMs: number; buildShare: string; runnerShare: string } {
  const ours = summaryOf(report, policyNames.taskshard);
  const theirs = summaryOf(report, baseline);
  const buildMs = theirs.executedWorkMs - ours.executedWorkMs;
  const runnerMs = theirs.runnerTimeMs - ours.runnerTimeMs;
  return { buildMs, runnerMs, buildShare: formatPercent(buildMs, theirs.executedWorkMs), runnerShare: formatPercent(runnerMs, theirs.runnerTimeMs) };
}

export function reportTable(reports: readonly SimReport[]): string {
  const header = ['workload', 'peers', 'cohorts', 'policy', 'executed/unique', 'build time', 'runner time', 'makespan/LB mean', 'max', 'ready mean', 'p95', 'max', 'aborted'];
  const widths = [20, 5, 7, 35, 15, 10, 11, 16, 6, 10, 8, 8, 7];
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
        formatDuration(s.executedWorkMs),
        formatDuration(s.runnerTimeMs),
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
  lines.push('', 'taskshard saves, runner time (build time):');
  for (const report of reports) {
    const parts = [policyNames.sharedCacheSchemaOrder, policyNames.sharedCacheRandomOrder, policyNames.everyPeer].map((b) => {
      const s = savingAgainst(report, b);
      return `vs ${shortPolicy[b].slice(0, 3)} ${formatSignedDuration(s.runnerMs)} ${s.runnerShare} (${formatSignedDuration(s.buildMs)} ${s.buildShare})`;
    });
    lines.push(`  ${pad(report.workload, 20)}  ${parts.join('; ')}`);
  }
  return lines.join('\n');
}

/** The machine-readable form: ratios, seconds (one decimal), per-peer time to universe and saving. */
export function reportJson(report: SimReport): Record<string, unknown> {
  return {
    workload: report.workload,
    seed: report.seed,
    peers: report.peers,
    steps: report.steps,
    cohorts: report.cohorts.length,
    uniqueWorkSec: s1(report.uniqueWorkMs),
    universeSec: s1(report.universeMs),
    lowerBoundSec: report.cohorts.map((c) => s1(c.lowerBoundMs)),
    policies: Object.fromEntries(
      report.summaries.map((s) => [
        s.policy,
        {
          buildTimeSec: s1(s.executedWorkMs),
          runnerTimeSec: s1(s.runnerTimeMs),
          executedOverUnique: r3(s.executedOverUnique),
          makespanOverLowerBound: { mean: r3(s.makespanOverLowerBound.mean), max: r3(s.makespanOverLowerBound.max) },
          timeToUniverseSec: { mean: s1(s.timeToUniverseMs.mean), p50: s1(s.timeToUniverseMs.p50), p95: s1(s.timeToUniverseMs.p95), max: s1(s.timeToUniverseMs.max) },
          abortedRuns: s.abortedRuns,
          perPeerTimeToUniverseSec: Object.fromEntries(Object.entries(s.perPeerTimeToUniverseMs).map(([p, ms]) => [p, s1(ms)])),
          perPeerSavedSec: Object.fromEntries(Object.entries(s.perPeerSavedMs).map(([p, ms]) => [p, s1(ms)])),
        },
      ]),
    ),
  };
}
