import type { CountPlan, Plan, PlannedPeer } from './plan.js';
import { recommendWithin } from './plan.js';
import { formatClock, formatDuration, formatPercent, formatSignedDuration, policyLabels, unitLegend } from './sim-format.js';
import { policyNames, type PolicyName } from './sim-types.js';

/** Text and JSON forms of a `taskshard plan`. */

/** The baselines users really have, compared first. */
const headlineBaselines: readonly PolicyName[] = [policyNames.sharedCacheSchemaOrder, policyNames.sharedCacheRandomOrder];
const policyOrder: readonly PolicyName[] = [
  policyNames.taskshard,
  policyNames.sharedCacheSchemaOrder,
  policyNames.sharedCacheRandomOrder,
  policyNames.everyPeer,
  policyNames.taskDirector,
];

export function formatPlanText(plan: Plan): string {
  const src = plan.durationSources;
  const from = [
    src['durations-file'] > 0 ? `${src['durations-file']} from the durations file` : '',
    src.estimateSec > 0 ? `${src.estimateSec} from estimateSec` : '',
    src.default > 0 ? `${src.default} at the core's default` : '',
  ].filter(Boolean);
  const single = plan.counts.length === 1 ? plan.counts[0]! : null;
  const peers = single ? `${single.peers} ${single.peers === 1 ? 'peer' : 'peers'}` : `${plan.counts[0]!.peers}..${plan.counts[plan.counts.length - 1]!.peers} peers`;
  const universe = plan.universeMs > 0 ? `, then a ${formatDuration(plan.universeMs)} universe build each` : '';
  const lines = [
    `plan for schema "${plan.schemaId}": ${plan.steps} steps, ${peers} ${arrivalText(plan.arrivalsSec)}${universe}; step durations: ${from.join(', ')}`,
    '(a dry run of the real scheduler core on a virtual clock, which knows these durations as recorded averages; the baselines run on the same durations and arrivals)',
    '',
  ];
  if (single) lines.push(...singleCountLines(plan, single));
  else lines.push(...rangeLines(plan));
  lines.push('', ...unitLegend, '(b)/(c): the jobs race on a shared remote cache; a step is a hit only if another job finished it before this one starts it');
  return `${lines.join('\n')}\n`;
}

function arrivalText(arrivalsSec: readonly number[]): string {
  if (arrivalsSec.every((a) => a === arrivalsSec[0])) return arrivalsSec[0] === 0 ? 'arriving together' : `arriving together at ${formatDuration(arrivalsSec[0]! * 1000)}`;
  return `arriving at ${arrivalsSec.map((a) => formatDuration(a * 1000)).join(', ')} (later peers with the last)`;
}

function peerLine(plan: Plan, peer: PlannedPeer): string {
  const busy = peer.runs.reduce((sum, r) => sum + r.endMs - r.startMs, 0);
  const steps = `${peer.runs.length} ${peer.runs.length === 1 ? 'step' : 'steps'}`;
  const saved =
    peer.savedMs >= 0
      ? `saves ${formatDuration(peer.savedMs)} against building alone (${formatDuration(plan.uniqueWorkMs)})`
      : `NEGATIVE saving: ${formatDuration(-peer.savedMs)} more than building alone (${formatDuration(plan.uniqueWorkMs)}), because it waits for the others`;
  const labels = peer.labels.length === 0 ? '' : ` [${peer.labels.join(' ')}]`;
  return `${peer.peerId}${labels}: arrives ${formatClock(peer.arrivalMs)}, ${steps}, busy ${formatDuration(busy)}, ready for its universe build at ${formatClock(peer.readyAtMs)}; ${saved}`;
}

function singleCountLines(plan: Plan, count: CountPlan): string[] {
  const lines: string[] = [];
  const width = Math.max(...count.perPeer.flatMap((p) => p.runs.map((r) => r.stepId.length)), 4);
  for (const peer of count.perPeer) {
    lines.push(peerLine(plan, peer));
    for (const r of peer.runs) lines.push(`  ${formatClock(r.startMs)} -> ${formatClock(r.endMs)}  ${r.stepId.padEnd(width)}  ${formatDuration(r.endMs - r.startMs)}`);
    if (peer.runs.length === 0) lines.push('  (builds nothing: the other peers take every step)');
  }
  if (count.unshared.length > 0) lines.push(`unshared (no peer has the labels they require; each peer's universe build covers them): ${count.unshared.join(', ')}`);
  const ours = count.policies.taskshard;
  lines.push(
    '',
    `expected makespan: ${formatDuration(ours.makespanMs)} (lower bound ${formatDuration(count.lowerBoundMs)}: critical path ${formatDuration(plan.criticalPathMs)} = ${plan.criticalPath.join(' -> ')}; work / peers ${formatDuration(plan.uniqueWorkMs / count.peers)}${count.unshared.length > 0 ? '; both count the unshared steps, which no peer builds here' : ''})`,
    '',
    `${'policy'.padEnd(36)}  ${'makespan'.padStart(8)}  ${'build time'.padStart(10)}  ${'runner time'.padStart(11)}`,
  );
  for (const policy of policyOrder) {
    const f = count.policies[policy];
    lines.push(`${policyLabels[policy].padEnd(36)}  ${formatDuration(f.makespanMs).padStart(8)}  ${formatDuration(f.buildMs).padStart(10)}  ${formatDuration(f.runnerMs).padStart(11)}`);
  }
  lines.push('');
  for (const policy of [...headlineBaselines, policyNames.everyPeer]) {
    const s = saving(count, policy);
    lines.push(`taskshard against ${policyLabels[policy]}: runner time ${savedWord(s.runnerMs)} ${formatDuration(Math.abs(s.runnerMs))} (${s.runnerShare}), build time ${savedWord(s.buildMs)} ${formatDuration(Math.abs(s.buildMs))} (${s.buildShare})`);
  }
  return lines;
}

function rangeLines(plan: Plan): string[] {
  const head = ['peers', 'makespan', 'build time', 'runner time', 'runner vs (b)', 'runner vs (c)', 'build vs (b)'];
  const widths = [5, 8, 10, 11, 20, 20, 20];
  const row = (cells: readonly string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  const lines = [row(head)];
  for (const count of plan.counts) {
    const f = count.policies.taskshard;
    const b = saving(count, policyNames.sharedCacheSchemaOrder);
    const c = saving(count, policyNames.sharedCacheRandomOrder);
    lines.push(
      row([
        String(count.peers),
        formatDuration(f.makespanMs),
        formatDuration(f.buildMs),
        formatDuration(f.runnerMs),
        `${formatSignedDuration(b.runnerMs)} (${b.runnerShare})`,
        `${formatSignedDuration(c.runnerMs)} (${c.runnerShare})`,
        `${formatSignedDuration(b.buildMs)} (${b.buildShare})`,
      ]),
    );
  }
  const best = Math.min(...plan.counts.map((c) => c.policies.taskshard.makespanMs));
  const bestAt = plan.counts.find((c) => c.policies.taskshard.makespanMs === best)!.peers;
  lines.push(
    '',
    `(runner vs (b)/(c), build vs (b): what taskshard saves against the shared-cache baselines at that peer count; negative means it costs more)`,
    `recommended: ${plan.recommendedPeers} ${plan.recommendedPeers === 1 ? 'peer' : 'peers'}, the smallest count whose makespan is within ${Math.round(recommendWithin * 100)}% of the best (${formatDuration(best)} at ${bestAt}); run with --peers ${plan.recommendedPeers} for its schedule`,
  );
  return lines;
}

function savedWord(ms: number): string {
  return ms >= 0 ? 'saves' : 'COSTS';
}

/** What taskshard saves against `baseline` at one count, in both units (negative: it costs more). */
export function saving(count: CountPlan, baseline: PolicyName): { runnerMs: number; buildMs: number; runnerShare: string; buildShare: string } {
  const ours = count.policies.taskshard;
  const theirs = count.policies[baseline];
  const runnerMs = theirs.runnerMs - ours.runnerMs;
  const buildMs = theirs.buildMs - ours.buildMs;
  return { runnerMs, buildMs, runnerShare: formatPercent(runnerMs, theirs.runnerMs), buildShare: formatPercent(buildMs, theirs.buildMs) };
}

/** The plan as JSON: seconds with up to three decimals. */
export function planJson(plan: Plan): Record<string, unknown> {
  const sec = (ms: number): number => Math.round(ms) / 1000;
  return {
    schema: plan.schemaId,
    steps: plan.steps,
    durationSources: plan.durationSources,
    arrivalsSec: plan.arrivalsSec,
    universeSec: sec(plan.universeMs),
    seed: plan.seed,
    criticalPath: plan.criticalPath,
    criticalPathSec: sec(plan.criticalPathMs),
    uniqueWorkSec: sec(plan.uniqueWorkMs),
    recommendedPeers: plan.recommendedPeers,
    counts: plan.counts.map((c) => ({
      peers: c.peers,
      lowerBoundSec: sec(c.lowerBoundMs),
      makespanSec: sec(c.policies.taskshard.makespanMs),
      buildTimeSec: sec(c.policies.taskshard.buildMs),
      runnerTimeSec: sec(c.policies.taskshard.runnerMs),
      unshared: c.unshared,
      perPeer: c.perPeer.map((p) => ({
        peerId: p.peerId,
        labels: p.labels,
        arrivalSec: sec(p.arrivalMs),
        readySec: sec(p.readyAtMs),
        savedSec: sec(p.savedMs),
        steps: p.runs.map((r) => ({ stepId: r.stepId, startSec: sec(r.startMs), endSec: sec(r.endMs) })),
      })),
      policies: Object.fromEntries(policyOrder.map((p) => [p, { makespanSec: sec(c.policies[p].makespanMs), buildTimeSec: sec(c.policies[p].buildMs), runnerTimeSec: sec(c.policies[p].runnerMs) }])),
      savedAgainst: Object.fromEntries(
        policyOrder.slice(1).map((p) => {
          const s = saving(c, p);
          return [p, { runnerTimeSec: sec(s.runnerMs), buildTimeSec: sec(s.buildMs) }];
        }),
      ),
    })),
  };
}
