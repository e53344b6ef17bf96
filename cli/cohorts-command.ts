import type { Command } from 'commander';
import { cohortPageUrl } from '../shared/dashboard-url.js';
import { cacheEvidenceListSchema, cohortListLines, cohortListSchema, cohortRunLines, timelineSchema } from './cohort-text.js';
import { apiBase, getJson } from './api-client.js';
import { intOption } from './option-parsers.js';
import { exitInvalid } from './schema-command.js';
import { normalizeRepo } from '../shared/repo-url.js';

/**
 * `taskshard cohorts [--watch] [--repo R]` and `taskshard cohort ID [--watch]`:
 * what the dashboard shows, in the terminal, from the authority's HTTP API.
 * `--watch` follows the authority's event stream (the one the dashboard uses)
 * and reprints after each change; `cohort ID --watch` ends when the run
 * resolves, with exit 0 if it succeeded and 1 otherwise.
 */

interface CommonFlags {
  server: string;
  token?: string;
  watch?: boolean;
  json?: boolean;
}

/**
 * Calls `onChange` for every `cohort` event of the authority's event stream until `signal` aborts
 * (resolves) or the stream ends (rejects: the authority went away).
 */
export async function followEvents(base: string, query: string, token: string | undefined, signal: AbortSignal, onChange: () => Promise<void>): Promise<void> {
  const url = `${base}/api/v1/events${query}`;
  let response: Response;
  try {
    response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal });
  } catch (err) {
    if (signal.aborted) return;
    throw new Error(`GET ${url}: ${(err as Error).message}`);
  }
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let running: Promise<void> = Promise.resolve();
  let queued = false;
  const schedule = (): void => {
    if (queued) return;
    queued = true;
    running = running.then(async () => {
      queued = false;
      await onChange();
    });
  };
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (/^event: cohort$/m.test(block)) schedule();
      }
    }
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
  await running;
  if (!signal.aborted) throw new Error(`${url}: the authority closed the event stream`);
}

function resolveBase(server: string): string | null {
  try {
    return apiBase(server);
  } catch (err) {
    process.stderr.write(`--server: ${(err as Error).message}\n`);
    return null;
  }
}

function print(lines: readonly string[], clear: boolean): void {
  if (clear && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
  else if (clear) process.stdout.write(`--- ${new Date().toISOString()}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const serverOption = ['--server <url>', 'the authority (http://HOST:PORT; a ws:// peer URL works too)', 'http://127.0.0.1:8080'] as const;
const tokenOption = ['--token <token>', 'peer or admin token when the authority has one (default: env TASKSHARD_TOKEN)'] as const;

export function registerCohortsCommands(program: Command): void {
  program
    .command('cohorts')
    .description('list open and recent cohorts (what the dashboard shows), newest first')
    .option(...serverOption)
    .option(...tokenOption)
    .option('--repo <url>', 'only cohorts of this repository')
    .option('--limit <n>', 'at most this many cohorts', intOption(1, 1000), 50)
    .option('--watch', 'reprint after every change the authority pushes (Ctrl-C ends)')
    .option('--json', 'print the API answer as JSON')
    .action(async (flags: CommonFlags & { repo?: string; limit: number }) => {
      const base = resolveBase(flags.server);
      if (base === null) return void (process.exitCode = exitInvalid);
      const token = flags.token ?? (process.env.TASKSHARD_TOKEN || undefined);
      const show = async (clear: boolean): Promise<void> => {
        const list = await getJson(base, `/api/v1/cohorts?limit=${flags.limit}`, token, cohortListSchema);
        if (flags.json) print([JSON.stringify({ cohorts: list.cohorts.filter((c) => flags.repo === undefined || normalizeRepo(c.repo) === normalizeRepo(flags.repo)) })], false);
        else print(cohortListLines(list, flags.repo ?? null), clear);
      };
      process.exitCode = await run(async () => {
        await show(false);
        if (!flags.watch) return 0;
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        await followEvents(base, '', token, stop.signal, () => show(true));
        return 0;
      });
    });

  program
    .command('cohort')
    .description("one cohort's run: outcome, totals, each peer's work, each step, failures with log tails")
    .argument('<id>', 'the cohort id (a peer prints it when it joins)')
    .option(...serverOption)
    .option(...tokenOption)
    .option('--watch', 'reprint after every change until the run resolves; exit 0 if it succeeded, else 1')
    .option('--json', 'print the timeline JSON (GET /api/v1/cohorts/ID/timeline)')
    .action(async (id: string, flags: CommonFlags) => {
      const base = resolveBase(flags.server);
      if (base === null) return void (process.exitCode = exitInvalid);
      const token = flags.token ?? (process.env.TASKSHARD_TOKEN || undefined);
      const pageUrl = cohortPageUrl(`${base.replace(/^http/, 'ws')}/v1/peer`, id);
      let outcome: string | null = null;
      const show = async (clear: boolean): Promise<void> => {
        const t = await getJson(base, `/api/v1/cohorts/${encodeURIComponent(id)}/timeline`, token, timelineSchema);
        outcome = t.outcome;
        if (flags.json) return print([JSON.stringify(t)], clear);
        const evidence = await getJson(base, `/api/v1/cohorts/${encodeURIComponent(id)}/cache-evidence`, token, cacheEvidenceListSchema);
        print(cohortRunLines(t, pageUrl, evidence.peers), clear);
      };
      process.exitCode = await run(async () => {
        await show(false);
        if (!flags.watch) return 0;
        if (outcome === null) {
          const stop = new AbortController();
          process.once('SIGINT', () => stop.abort());
          await followEvents(base, `?cohort=${encodeURIComponent(id)}`, token, stop.signal, async () => {
            await show(true);
            if (outcome !== null) stop.abort();
          });
        }
        return outcome === 'succeeded' ? 0 : 1;
      });
    });
}

async function run(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    process.stderr.write(`taskshard: ${(err as Error).message}\n`);
    return 1;
  }
}
