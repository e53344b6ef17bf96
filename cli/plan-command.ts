import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { parseDurationsText } from '../server/sim/durations-file.js';
import { planSchedule } from '../server/sim/plan.js';
import { formatPlanText, planJson } from '../server/sim/plan-format.js';
import { formatSchemaProblem } from '../shared/schema-validate.js';
import { limits } from '../shared/limits.js';
import { labelListSchema, splitLabelList } from '../shared/labels.js';
import { intOption, numberOption } from './option-parsers.js';
import { exitInvalid, loadSchemaFile } from './schema-command.js';

interface PlanFlags {
  schema: string;
  peers?: number[];
  peer?: string[][];
  arrivals?: number[];
  universeSec?: number;
  seed?: number;
  durations?: string;
  json?: boolean;
}

const maxPeers = 1000;
/** A range plans each count in it; this many counts at most. */
const maxCounts = 100;

/** `--peers 3` or `--peers 1..12`: the counts to plan for, ascending. */
export function peerCountsOption(value: string): number[] {
  const m = /^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected a count (3) or a range (1..12), got "${value}"`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > maxPeers) throw new InvalidArgumentError(`expected peer counts from 1 to ${maxPeers}, got ${value}`);
  if (to < from) throw new InvalidArgumentError(`the range ${value} is empty: write it low..high`);
  if (to - from + 1 > maxCounts) throw new InvalidArgumentError(`at most ${maxCounts} counts in a range, got ${to - from + 1}`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** `--peer gpu,arch:x64` (repeatable): one peer with these labels; `--peer ''` or `--peer -` is a peer without labels. */
export function peerLabelsOption(value: string, previous: string[][] = []): string[][] {
  if (previous.length >= maxPeers) throw new InvalidArgumentError(`at most ${maxPeers} --peer flags`);
  const labels = value.trim() === '-' ? [] : splitLabelList(value);
  const parsed = labelListSchema.safeParse(labels);
  if (!parsed.success) throw new InvalidArgumentError(`peer ${previous.length + 1} ("${value}"): ${parsed.error.issues[0]?.message ?? 'invalid labels'}`);
  return [...previous, parsed.data];
}

/** `--arrivals 0,30,90`: arrival seconds of peer 1, 2, 3, ... */
export function arrivalsOption(value: string): number[] {
  const parts = value.split(',');
  if (parts.length > maxPeers) throw new InvalidArgumentError(`at most ${maxPeers} arrival times, got ${parts.length}`);
  return parts.map((part, i) => {
    const n = Number(part.trim());
    if (part.trim() === '' || !Number.isFinite(n) || n < 0 || n > limits.maxEstimateSec) {
      throw new InvalidArgumentError(`arrival ${i + 1} ("${part}"): expected seconds from 0 to ${limits.maxEstimateSec}, e.g. 0,30,90`);
    }
    return n;
  });
}

/** `taskshard plan`: who would build what, in which order, and what it saves; nothing connects anywhere. */
export function registerPlanCommand(program: Command): void {
  program
    .command('plan')
    .description('dry run of the scheduler: who builds what, the makespan, build time and runner time against the shared-cache baselines, for one or a range of peer counts')
    .requiredOption('--schema <file>', 'schema file')
    .option('--peers <k|a..b>', 'peers (CI jobs of one change) sharing one cohort: a count, or a range to compare (1..12); default: one per --arrivals value', peerCountsOption)
    .option('--peer <labels>', "one peer with these labels, e.g. --peer gpu,arch:x64 --peer arch:x64 (repeatable; '-' for none): steps that require labels go only to peers that have them", peerLabelsOption)
    .option('--arrivals <sec,...>', 'when peer 1, 2, ... arrives, seconds after the first (0,30,90); later peers arrive with the last (default: all at 0)', arrivalsOption)
    .option('--universe-sec <sec>', "each peer's universe build after its steps, counted in runner time (default 0)", numberOption(0, limits.maxEstimateSec))
    .option('--seed <n>', "seed of baseline (c)'s random build orders (default 1)", intOption(0, 2 ** 31 - 1))
    .option('--durations <file>', 'JSON object of step id -> seconds (taskshard durations export writes one); other steps use estimateSec, then 60 s')
    .option('--json', 'print the plan as one JSON object')
    .action((flags: PlanFlags) => {
      process.exitCode = runPlan(flags);
    });
}

function runPlan(flags: PlanFlags): number {
  if (flags.peer && flags.peers && (flags.peers.length !== 1 || flags.peers[0] !== flags.peer.length)) {
    process.stderr.write(`error: --peer describes ${flags.peer.length} peers; leave out --peers, or make it ${flags.peer.length}\n`);
    return exitInvalid;
  }
  const peerCounts = flags.peers ?? (flags.peer ? [flags.peer.length] : flags.arrivals ? [flags.arrivals.length] : null);
  if (peerCounts === null) {
    process.stderr.write("error: give --peers <k|a..b>, --peer LABELS (one per peer), or --arrivals (one peer per value)\n");
    return exitInvalid;
  }
  const loaded = loadSchemaFile(flags.schema);
  if (loaded.ok === 'skipped') {
    process.stderr.write(`${flags.schema}: ${loaded.reason} [schema]\n`);
    return exitInvalid;
  }
  if (!loaded.ok) {
    for (const line of loaded.lines) process.stderr.write(`${line}\n`);
    return exitInvalid;
  }
  let durationsSec: ReadonlyMap<string, number> = new Map();
  if (flags.durations !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.durations, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      process.stderr.write(`${flags.durations}: cannot read: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)} [read]\n`);
      return exitInvalid;
    }
    const parsed = parseDurationsText(text, loaded.schema);
    if (!parsed.ok) {
      for (const p of parsed.problems) process.stderr.write(`${formatSchemaProblem(flags.durations, p)}\n`);
      return exitInvalid;
    }
    for (const w of parsed.warnings) process.stderr.write(`warning: ${formatSchemaProblem(flags.durations, w)}\n`);
    durationsSec = parsed.durationsSec;
  }
  const plan = planSchedule({
    schema: loaded.schema,
    peerCounts,
    durationsSec,
    ...(flags.arrivals ? { arrivalsSec: flags.arrivals } : {}),
    ...(flags.universeSec === undefined ? {} : { universeSec: flags.universeSec }),
    ...(flags.seed === undefined ? {} : { seed: flags.seed }),
    ...(flags.peer ? { peerLabels: flags.peer } : {}),
  });
  process.stdout.write(flags.json ? `${JSON.stringify(planJson(plan))}\n` : formatPlanText(plan));
  return 0;
}
