import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CoreStat } from '../core/core-types.js';

/** Prometheus metrics of one authority, on a registry of its own (several apps can live in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly errors: Counter<'code'>;
  /** Frames received on peer sockets, by what became of them. */
  readonly frames: Counter<'result'>;
  private readonly counters: Record<CoreStat, Counter>;

  constructor(gauges: () => { peersConnected: number; cohortsOpen: number; leasesLive: number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'taskshard_process_' });
    const counter = (name: string, help: string) => new Counter({ name, help, registers: [this.registry] });
    this.counters = {
      'step.assigned': counter('taskshard_steps_assigned_total', 'Leases granted (backup copies included).'),
      'step.succeeded': counter('taskshard_steps_succeeded_total', 'Steps that succeeded (built once).'),
      'step.failed': counter('taskshard_steps_failed_total', 'Steps failed for their cohort.'),
      'step.reused': counter('taskshard_steps_reused_total', 'Steps skipped because a memo held their result.'),
      'lease.expired': counter('taskshard_lease_expiries_total', 'Leases lost with their peer (grace expired, bye, or not resumed).'),
      'seconds.saved': counter('taskshard_seconds_saved_total', 'Build time saved (s): step builds not repeated, versus every peer of a completed cohort building every step.'),
      'runner.spent': counter('taskshard_runner_seconds_total', 'Runner time (s) of peers told complete: join to complete, building and waiting.'),
      'runner.alone': counter('taskshard_runner_seconds_alone_total', 'What those peers would have spent building every step alone (s); minus taskshard_runner_seconds_total is the runner time saved, which can be negative.'),
    };
    this.frames = new Counter({
      name: 'taskshard_frames_received_total',
      help: 'Frames received from peers: ok, bad (error frame), rate_limited, or ignored (connection closing).',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.errors = new Counter({ name: 'taskshard_errors_total', help: 'Error frames sent, by code.', labelNames: ['code'], registers: [this.registry] });
    const gauge = (name: string, help: string, pick: (g: ReturnType<typeof gauges>) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(pick(gauges()));
        },
      });
    gauge('taskshard_peers_connected', 'Peers with a live connection.', (g) => g.peersConnected);
    gauge('taskshard_cohorts_open', 'Cohorts with unresolved steps.', (g) => g.cohortsOpen);
    gauge('taskshard_leases_live', 'Leases currently held.', (g) => g.leasesLive);
  }

  recordStat(stat: CoreStat, value: number): void {
    this.counters[stat].inc(value);
  }
}
