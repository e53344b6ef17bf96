import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CoreStat } from '../core/core-types.js';
import { isRowWrite, type Write } from '../core/records.js';
import { WriteMetrics } from './write-metrics.js';

/** A counter's child for one label value. */
type Child = { inc(value?: number): void };

/** Every `Write['table']`, so the rows-written counter has a child for each (the type check keeps the list whole). */
const writeTables = ['cohort', 'step', 'lease', 'peer', 'memo', 'memo.delete', 'duration', 'event'] as const satisfies readonly Write['table'][];
type MissingTable = Exclude<Write['table'], (typeof writeTables)[number]>;
const allTablesListed: MissingTable extends never ? true : false = true;
void allTablesListed;

/**
 * A counter with one label whose increments are plain additions to a number,
 * handed to prom-client when the registry is read (its `collect` hook, on
 * every scrape and every `get()`). prom-client hashes the label object on
 * every `inc`, children from `labels()` included, and frames are counted on
 * every frame received.
 */
function talliedCounter<V extends string>(registry: Registry, name: string, help: string, label: string, values: readonly V[]): { counter: Counter; children: Record<V, Child> } {
  const pending = Object.fromEntries(values.map((v) => [v, 0])) as Record<V, number>;
  const counter = new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      for (const value of values) {
        const n = pending[value];
        if (n === 0) continue;
        pending[value] = 0;
        this.inc({ [label]: value }, n);
      }
    },
  });
  const children = {} as Record<V, Child>;
  // One closure per label value, made once.
  for (const value of values) children[value] = { inc: (by = 1) => void (pending[value] += by) };
  return { counter, children };
}

/** Prometheus metrics of one authority, on a registry of its own (several apps can live in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly errors: Counter<'code'>;
  /** Inputs held for a later event-loop turn because their turn had spent its budget (server/authority.ts). */
  readonly inputsDeferred: Counter;
  /** Waiting inputs handled at once, over the turn budget, because the queue of waiting inputs was full. */
  readonly inputsOverBudget: Counter;
  /** Frames received on peer sockets, by what became of them. */
  readonly frames: Counter<'result'>;
  /** {@link frames}' children by result, made once: counted on every frame without hashing labels. */
  readonly framesByResult: Readonly<Record<'ok' | 'bad' | 'ignored' | 'rate_limited' | 'too_big', Child>>;
  /** Histograms derived from committed writes. */
  readonly fromWrites: WriteMetrics;
  private readonly counters: Record<Exclude<CoreStat, 'seconds.saved'>, Counter>;
  /** `taskshard_steps_total` by outcome, label children made once (prom-client hashes a label object on every `inc`). */
  private readonly stepsByOutcome: { readonly built: Child; readonly reused: Child; readonly failed: Child };
  /** `taskshard_saved_seconds_total{unit="build"}`. */
  private readonly savedBuildSeconds: Child;
  /** Row-level store writes committed, by table (the benchmark divides it by assignments). */
  private readonly rowsWritten: Counter<'table'>;
  /** {@link rowsWritten}' children by table, made once: every commit counts its rows without hashing labels. */
  private readonly rowsByTable: Readonly<Record<Write['table'], Child>>;

  /** `version` labels `taskshard_build_info`. */
  constructor(gauges: () => { peersConnected: number; cohortsOpen: number; leasesLive: number }, version = '0.0.0') {
    // Standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...), as every Node dashboard expects.
    collectDefaultMetrics({ register: this.registry });
    this.fromWrites = new WriteMetrics(this.registry);
    new Gauge({
      name: 'taskshard_build_info',
      help: 'Always 1; the labels say which taskshard and Node.js are running.',
      labelNames: ['version', 'node_version'],
      registers: [this.registry],
    }).set({ version, node_version: process.version }, 1);
    const stepsByOutcome = new Counter({
      name: 'taskshard_steps_total',
      help: 'Steps resolved, by outcome: built (succeeded), reused (from a memo), failed.',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.stepsByOutcome = { built: stepsByOutcome.labels('built'), reused: stepsByOutcome.labels('reused'), failed: stepsByOutcome.labels('failed') };
    const savedSeconds = new Counter({
      name: 'taskshard_saved_seconds_total',
      // One series per unit that can only grow. Runner time saved can be negative, so it is the difference of two counters instead.
      help: 'Build seconds saved (unit="build"): every member of a completed cohort building every succeeded step, minus building each once. Runner time saved: taskshard_runner_seconds_alone_total - taskshard_runner_seconds_total.',
      labelNames: ['unit'],
      registers: [this.registry],
    });
    // The series exists from the start (0), so a dashboard's increase() has a baseline.
    this.savedBuildSeconds = savedSeconds.labels('build');
    this.savedBuildSeconds.inc(0);
    const rows = talliedCounter(
      this.registry,
      'taskshard_store_rows_written_total',
      'Row-level writes the authority committed to its store (inserts, updates, deletes), by table.',
      'table',
      writeTables,
    );
    this.rowsWritten = rows.counter;
    this.rowsByTable = rows.children;
    const counter = (name: string, help: string) => new Counter({ name, help, registers: [this.registry] });
    this.counters = {
      'step.assigned': counter('taskshard_steps_assigned_total', 'Leases granted (backup copies included).'),
      'step.succeeded': counter('taskshard_steps_succeeded_total', 'Steps that succeeded (built once).'),
      'step.failed': counter('taskshard_steps_failed_total', 'Steps failed for their cohort.'),
      'step.reused': counter('taskshard_steps_reused_total', 'Steps skipped because a memo held their result.'),
      'lease.expired': counter('taskshard_lease_expiries_total', 'Leases whose holder died while running the step (grace expired, or gone after a restart); these count toward --max-lost-leases.'),
      'lease.released': counter('taskshard_leases_released_total', 'Leases given back by a live holder (bye, a resume without the step, a Task Director client closing); never poison.'),
      'lease.timed-out': counter('taskshard_leases_timed_out_total', 'Leases ended because they passed --max-lease-age; the step is leased again.'),
      'runner.spent': counter('taskshard_runner_seconds_total', 'Runner time (s) of peers told complete: join to complete, building and waiting.'),
      'runner.alone': counter('taskshard_runner_seconds_alone_total', 'What those peers would have spent building every step alone (s); minus taskshard_runner_seconds_total is the runner time saved, which can be negative.'),
    };
    const frames = talliedCounter(
      this.registry,
      'taskshard_frames_received_total',
      'Frames received from peers: ok, bad (error frame), rate_limited, too_big, or ignored (connection closing).',
      'result',
      ['ok', 'bad', 'ignored', 'rate_limited', 'too_big'],
    );
    this.frames = frames.counter;
    this.framesByResult = frames.children;
    this.inputsDeferred = counter(
      'taskshard_inputs_deferred_total',
      'Inputs (frames, ticks) handled in a later event-loop turn because their turn had spent its budget (10 ms of inputs), so no turn blocks the authority long.',
    );
    this.inputsOverBudget = counter(
      'taskshard_inputs_over_budget_total',
      'Waiting inputs handled at once, over the turn budget, because 5,000 were already waiting: the authority is not keeping up with its peers.',
    );
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
    if (stat === 'seconds.saved') {
      this.savedBuildSeconds.inc(value);
      return;
    }
    this.counters[stat].inc(value);
    if (stat === 'step.succeeded') this.stepsByOutcome.built.inc(value);
    else if (stat === 'step.reused') this.stepsByOutcome.reused.inc(value);
    else if (stat === 'step.failed') this.stepsByOutcome.failed.inc(value);
  }

  /** A batch the authority committed, at `nowMs`. */
  observeWrites(writes: readonly Write[], nowMs: number): void {
    const rows = this.rowsByTable;
    for (const w of writes) if (isRowWrite(w)) rows[w.table].inc();
    this.fromWrites.observe(writes, nowMs);
  }
}
