import { runEveryPeerBaseline } from './baseline-every-peer.js';
import { runRandomOrderBaseline, runSchemaOrderBaseline } from './baseline-shared-cache.js';
import { runTaskDirectorBaseline } from './baseline-task-director.js';
import { runCore } from './core-driver.js';
import { capacityBoundMs, summarize } from './sim-metrics.js';
import { DurationTable } from './step-durations.js';
import { policyNames, type SimCohort, type SimOptions, type SimReport, type SimWorkload } from './sim-types.js';

/**
 * One simulation run: the real core first (it decides the cohorts), then the
 * four baselines over the same cohorts, durations and arrivals, then the
 * figures: (b) shared cache in schema order, (c) shared cache in random
 * order, (a) every peer builds everything, (d) the Task Director policy.
 * Pure and deterministic: the same workload (seed included) gives the same report.
 */
export function simulate(workload: SimWorkload, options: SimOptions = {}): SimReport {
  if (workload.peers.length === 0) throw new Error(`workload ${workload.name} has no peers`);
  const ids = new Set<string>();
  for (const p of workload.peers) {
    if (ids.has(p.peerId)) throw new Error(`workload ${workload.name}: peer id ${p.peerId} appears twice`);
    if (!(p.arrivalMs >= 0)) throw new Error(`workload ${workload.name}: peer ${p.peerId} arrives at ${p.arrivalMs} ms`);
    ids.add(p.peerId);
  }
  const universeMs = workload.universeMs ?? 0;
  if (!(universeMs >= 0) || !Number.isFinite(universeMs)) throw new Error(`workload ${workload.name}: universe build of ${universeMs} ms`);
  const durations = new DurationTable(workload);
  const core = runCore(workload, durations, options);
  const cohorts: SimCohort[] = core.cohorts.map((c, index) => {
    const arrivals = c.members.map((m) => m.arrivalMs);
    const uniqueWorkMs = durations.uniqueWorkMs(index);
    const criticalPathMs = durations.criticalPathMs(index);
    return {
      index,
      coreId: c.coreId,
      members: c.members,
      firstArrivalMs: Math.min(...arrivals),
      uniqueWorkMs,
      criticalPathMs,
      lowerBoundMs: Math.max(criticalPathMs, capacityBoundMs(arrivals, uniqueWorkMs)),
    };
  });
  const uniqueWorkMs = cohorts.reduce((sum, c) => sum + c.uniqueWorkMs, 0);
  const schemaOrder = runSchemaOrderBaseline(workload, cohorts, durations);
  const randomOrder = runRandomOrderBaseline(workload, cohorts, durations);
  const everyPeer = runEveryPeerBaseline(workload, cohorts, durations);
  const taskDirector = runTaskDirectorBaseline(workload, cohorts, durations);
  const taskshard = { policy: core.policy, runs: core.runs, peers: core.peers };
  const all = [taskshard, schemaOrder, randomOrder, everyPeer, taskDirector];
  return {
    workload: workload.name,
    seed: workload.seed,
    peers: workload.peers.length,
    steps: workload.schema.steps.length,
    cohorts,
    uniqueWorkMs,
    universeMs,
    runs: {
      [policyNames.taskshard]: taskshard,
      [policyNames.sharedCacheSchemaOrder]: schemaOrder,
      [policyNames.sharedCacheRandomOrder]: randomOrder,
      [policyNames.everyPeer]: everyPeer,
      [policyNames.taskDirector]: taskDirector,
    },
    summaries: all.map((run) => summarize(run, cohorts, uniqueWorkMs, universeMs)),
  };
}
