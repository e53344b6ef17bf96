import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { apiBase, getJson } from './api-client.js';
import { intOption } from './option-parsers.js';
import { exitInvalid } from './schema-command.js';

/**
 * `taskshard durations export`: measured step durations from an authority's
 * HTTP API, written as the durations file `taskshard plan --durations` reads,
 * so plans use real history. For the newest `--cohorts` complete cohorts of
 * the schema (optionally of one repo), each step's duration is the mean of
 * the durations the authority measured for it (lease start to completion);
 * steps reused from a memo or never built have no measurement and are left
 * out (plan then uses estimateSec).
 */

interface ExportFlags {
  server: string;
  schemaId: string;
  repo?: string;
  cohorts: number;
  token?: string;
  out?: string;
}

/** What the export reads from `GET /api/v1/cohorts` (other fields are ignored). */
const cohortListSchema = z.object({
  cohorts: z.array(z.object({ id: z.string(), schemaId: z.string(), repo: z.string(), status: z.string(), createdAt: z.string() })),
});

/** What the export reads from `GET /api/v1/cohorts/:id`. */
const cohortDetailSchema = z.object({
  steps: z.array(z.object({ id: z.string(), status: z.string().nullable(), fromMemo: z.boolean(), durationMs: z.number().nonnegative().nullable() })),
});
export type CohortDetail = z.infer<typeof cohortDetailSchema>;

/** The most cohorts the list endpoint returns in one page. */
const listLimit = 1000;


/**
 * Mean measured seconds per step over the cohorts' details, in the order steps
 * first appear (the schema's order); one decimal.
 */
export function meanDurationsSec(details: readonly CohortDetail[]): Record<string, number> {
  const sums = new Map<string, { ms: number; n: number }>();
  for (const detail of details) {
    for (const step of detail.steps) {
      if (step.status !== 'succeeded' || step.fromMemo || step.durationMs === null) continue;
      const entry = sums.get(step.id) ?? { ms: 0, n: 0 };
      entry.ms += step.durationMs;
      entry.n++;
      sums.set(step.id, entry);
    }
  }
  // A measured 0 ms step still gets a positive duration: the durations file needs seconds > 0.
  return Object.fromEntries([...sums].map(([id, { ms, n }]) => [id, Math.max(0.1, Math.round(ms / n / 100) / 10)]));
}

export function registerDurationsCommand(program: Command): void {
  const durations = program.command('durations').description('measured step durations from an authority, for taskshard plan');
  durations
    .command('export')
    .description("write the authority's measured step durations of a schema as a durations file (mean over the newest complete cohorts)")
    .requiredOption('--server <url>', 'the authority (http://HOST:PORT; a ws:// peer URL works too)')
    .requiredOption('--schema-id <id>', 'schema id (the "id" of the schema file, or its file name without .json)')
    .option('--repo <url>', 'only cohorts of this repository')
    .option('--cohorts <n>', 'newest complete cohorts to average over', intOption(1, listLimit), 20)
    .option('--token <token>', 'peer or admin token when the authority has one (default: env TASKSHARD_TOKEN)')
    .option('--out <file>', 'write the file here (default: stdout)')
    .action(async (flags: ExportFlags) => {
      process.exitCode = await runExport(flags);
    });
}

async function runExport(flags: ExportFlags): Promise<number> {
  let base: string;
  try {
    base = apiBase(flags.server);
  } catch (err) {
    process.stderr.write(`--server: ${(err as Error).message}\n`);
    return exitInvalid;
  }
  const token = flags.token ?? (process.env.TASKSHARD_TOKEN || undefined);
  try {
    const list = await getJson(base, `/api/v1/cohorts?status=complete&limit=${listLimit}`, token, cohortListSchema);
    const chosen = list.cohorts.filter((c) => c.schemaId === flags.schemaId && (flags.repo === undefined || c.repo === flags.repo)).slice(0, flags.cohorts);
    if (chosen.length === 0) {
      const repo = flags.repo === undefined ? '' : ` of repo ${flags.repo}`;
      process.stderr.write(`${base}: no complete cohort of schema "${flags.schemaId}"${repo} among the newest ${listLimit}; nothing to export\n`);
      return 1;
    }
    const details: CohortDetail[] = [];
    for (const c of chosen) details.push(await getJson(base, `/api/v1/cohorts/${encodeURIComponent(c.id)}`, token, cohortDetailSchema));
    const durationsSec = meanDurationsSec(details);
    const text = `${JSON.stringify(durationsSec, null, 2)}\n`;
    if (flags.out === undefined) process.stdout.write(text);
    else writeFileSync(flags.out, text);
    process.stderr.write(`${Object.keys(durationsSec).length} step durations from ${chosen.length} complete ${chosen.length === 1 ? 'cohort' : 'cohorts'} of schema "${flags.schemaId}"${flags.out === undefined ? '' : ` written to ${flags.out}`}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`durations export: ${(err as Error).message}\n`);
    return 1;
  }
}
