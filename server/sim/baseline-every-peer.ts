import type { DurationTable } from './step-durations.js';
import { topologicalOrder } from './step-durations.js';
import { policyNames, runKinds, type PeerTimeline, type PolicyRun, type SimCohort, type SimWorkload, type StepRun } from './sim-types.js';

/**
 * Baseline (a), "every peer builds everything": no authority, no sharing.
 * Each peer builds every step itself, one after another in an order that
 * respects `needs`, starting when it arrives; it is ready for its universe
 * build after the cohort's whole unique work.
 */
export function runEveryPeerBaseline(workload: SimWorkload, cohorts: readonly SimCohort[], durations: DurationTable): PolicyRun {
  const order = topologicalOrder(workload.schema);
  const runs: StepRun[] = [];
  const peers: PeerTimeline[] = [];
  for (const cohort of cohorts) {
    for (const member of cohort.members) {
      let t = member.arrivalMs;
      for (const stepId of order) {
        const ms = durations.ms(cohort.index, stepId);
        runs.push({ peerId: member.peerId, cohort: cohort.index, stepId, kind: runKinds.own, startMs: t, endMs: t + ms, aborted: false });
        t += ms;
      }
      peers.push({ peerId: member.peerId, cohort: cohort.index, arrivalMs: member.arrivalMs, readyAtMs: t });
    }
  }
  return { policy: policyNames.everyPeer, runs, peers };
}
