import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDurationsText } from '../server/sim/durations-file.js';
import { formatPlanText, planJson, planSchedule } from '../server/sim/plan.js';
import { formatSchemaProblem } from '../shared/schema-validate.js';
import { intOption } from './option-parsers.js';
import { exitInvalid, loadSchemaFile } from './schema-command.js';

interface PlanFlags {
  schema: string;
  peers: number;
  durations?: string;
  json?: boolean;
}

/** `taskshard plan`: who would build what, in which order, and what it saves; nothing connects anywhere. */
export function registerPlanCommand(program: Command): void {
  program
    .command('plan')
    .description('dry run of the scheduler: which peer builds what in which order, the expected makespan and the saving')
    .requiredOption('--schema <file>', 'schema file')
    .requiredOption('--peers <k>', 'peers (CI jobs) sharing one cohort, arriving together', intOption(1, 1000))
    .option('--durations <file>', 'JSON object of step id -> seconds (measured durations); other steps use estimateSec, then 60 s')
    .option('--json', 'print the plan as one JSON object')
    .action((flags: PlanFlags) => {
      process.exitCode = runPlan(flags);
    });
}

function runPlan(flags: PlanFlags): number {
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
    durationsSec = parsed.durationsSec;
  }
  const plan = planSchedule({ schema: loaded.schema, peers: flags.peers, durationsSec });
  process.stdout.write(flags.json ? `${JSON.stringify(planJson(plan))}\n` : formatPlanText(plan));
  return 0;
}
