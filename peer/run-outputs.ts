import { appendFileSync, writeFileSync } from 'node:fs';
import type { SchemaDef } from '../shared/schema-file.js';
import type { Env } from './ci-environment.js';
import { clientVersion } from './client-version.js';
import type { ParsedPeerOptions } from './options.js';
import type { PeerReport } from './report.js';
import type { PeerResult } from './run-peer.js';
import { stepSummaryMarkdown, type RunRecord, type RunReportJson } from './run-record.js';
import type { ResolvedSource } from './source-resolver.js';

/**
 * After the run: `--report FILE` gets the JSON summary, and in GitHub Actions
 * `$GITHUB_STEP_SUMMARY` gets a table. A file that cannot be written is a
 * warning, never a change of the exit code (the build's result stands).
 */
export interface RunOutputContext {
  readonly o: ParsedPeerOptions;
  readonly schema: SchemaDef;
  readonly digest: string;
  readonly source: ResolvedSource;
  readonly report: PeerReport;
  readonly env: Env;
  readonly githubSummary: boolean;
}

export function buildRunReport(record: RunRecord, result: PeerResult, ctx: RunOutputContext): RunReportJson {
  const { source, o } = ctx;
  return record.toJson({
    version: clientVersion(),
    peerId: result.peerId,
    labels: result.labels,
    schema: { id: ctx.schema.id, digest: ctx.digest },
    source: { repo: source.repo, baseRef: source.baseRef, baseSha: source.baseSha, patchsets: source.patchsets, cohortKey: o.cohortKey ?? null },
    mode: result.mode,
    exitCode: result.exitCode,
    finalLine: result.finalLine ?? '',
    failOpen: result.failOpenReason === null ? null : { cause: result.failOpenCause ?? 'unknown', reason: result.failOpenReason },
    universe: result.universe,
    savedSec: result.savedSec,
  });
}

export function writeRunOutputs(record: RunRecord, result: PeerResult, ctx: RunOutputContext): void {
  const json = buildRunReport(record, result, ctx);
  if (ctx.o.report !== undefined) {
    try {
      writeFileSync(ctx.o.report, `${JSON.stringify(json, null, 2)}\n`);
    } catch (err) {
      ctx.report.warning(`--report ${ctx.o.report}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const summaryFile = ctx.env.GITHUB_STEP_SUMMARY;
  if (ctx.githubSummary && summaryFile) {
    try {
      appendFileSync(summaryFile, stepSummaryMarkdown(json));
    } catch (err) {
      ctx.report.warning(`GITHUB_STEP_SUMMARY ${summaryFile}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}
