import type { PolicyRun, PolicySummary, SimCohort, Stats } from './sim-types.js';

/**
 * The figures the simulator reports, computed the same way for every policy.
 */

/**
 * The smallest T such that peers arriving at `arrivalsMs` (relative to the
 * first, which is 0) have together had `workMs` of machine time by T:
 * Σ max(0, T − a_i) ≥ work. With every arrival at 0 it is work ÷ K.
 */
export function capacityBoundMs(arrivalsMs: readonly number[], workMs: number): number {
  if (arrivalsMs.length === 0) throw new Error('capacity bound of a cohort without peers');
  const sorted = [...arrivalsMs].sort((a, b) => a - b);
  const first = sorted[0]!;
  let sumArrivals = 0;
  for (let k = 1; k <= sorted.length; k++) {
    sumArrivals += sorted[k - 1]! - first;
    const t = (workMs + sumArrivals) / k;
    const next = sorted[k];
    if (next === undefined || t <= next - first) return t;
  }
  throw new Error('unreachable');
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function stats(values: readonly number[]): Stats {
  if (values.length === 0) return { mean: 0, p50: 0, p95: 0, max: 0 };
  let sum = 0;
  for (const v of values) sum += v;
  return { mean: sum / values.length, p50: percentile(values, 50), p95: percentile(values, 95), max: Math.max(...values) };
}

export function summarize(run: PolicyRun, cohorts: readonly SimCohort[], uniqueWorkMs: number, universeMs: number): PolicySummary {
  let executedWorkMs = 0;
  let abortedRuns = 0;
  for (const r of run.runs) {
    executedWorkMs += r.endMs - r.startMs;
    if (r.aborted) abortedRuns++;
  }
  const lastReady = new Map<number, number>();
  const perPeer: Record<string, number> = {};
  const perPeerSaved: Record<string, number> = {};
  const ttu: number[] = [];
  let runnerTimeMs = 0;
  for (const p of run.peers) {
    const spent = p.readyAtMs - p.arrivalMs;
    lastReady.set(p.cohort, Math.max(lastReady.get(p.cohort) ?? -Infinity, p.readyAtMs));
    perPeer[p.peerId] = spent;
    perPeerSaved[p.peerId] = cohorts[p.cohort]!.uniqueWorkMs - spent;
    ttu.push(spent);
    runnerTimeMs += spent + universeMs;
  }
  const ratios = cohorts.map((c) => {
    const makespan = lastReady.get(c.index)! - c.firstArrivalMs;
    return c.lowerBoundMs === 0 ? 1 : makespan / c.lowerBoundMs;
  });
  return {
    policy: run.policy,
    executedWorkMs,
    runnerTimeMs,
    executedOverUnique: uniqueWorkMs === 0 ? 1 : executedWorkMs / uniqueWorkMs,
    makespanOverLowerBound: { mean: ratios.reduce((a, b) => a + b, 0) / ratios.length, max: Math.max(...ratios) },
    timeToUniverseMs: stats(ttu),
    perPeerTimeToUniverseMs: perPeer,
    perPeerSavedMs: perPeerSaved,
    abortedRuns,
  };
}
