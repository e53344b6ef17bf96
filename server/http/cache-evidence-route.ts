import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { z } from 'zod';
import { cacheEvidenceReportSchema, type CacheEvidenceReport } from '../../shared/protocol.js';
import { describeProblems } from '../../shared/frames.js';
import { capText } from '../../shared/text-caps.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import type { Clock } from '../core/clock.js';
import type { RunReader } from './run-reader.js';

/**
 * Cache evidence (#14): after its universe build a peer with `--build-tool` posts what came from
 * the remote cache (`POST /api/v1/cohorts/:id/cache-evidence`, peer or admin token, body
 * `cacheEvidenceReportSchema`); `GET /api/v1/cohorts/:id/cache-evidence` lists it per peer, so
 * "why did this rebuild?" has an answer. Only a peer that was a member of the cohort may report for
 * it. The book keeps the newest `maxCohorts` cohorts in memory (it is a diagnostic, not scheduling
 * state: a restart forgets it) and logs every report, so the log keeps it too.
 */

export interface RecordedEvidence {
  readonly peerId: string;
  readonly reportedAtMs: number;
  readonly tool: CacheEvidenceReport['evidence']['tool'];
  readonly hits: number;
  readonly misses: number;
  readonly missedSteps: readonly string[];
}

export class CacheEvidenceBook {
  private readonly byCohort = new Map<string, Map<string, RecordedEvidence>>();

  constructor(private readonly maxCohorts = 1000) {}

  record(cohortId: string, report: CacheEvidenceReport, atMs: number): RecordedEvidence {
    let peers = this.byCohort.get(cohortId);
    if (peers === undefined) {
      peers = new Map();
      this.byCohort.set(cohortId, peers);
      // Insertion order is age order: drop the oldest cohorts beyond the cap.
      for (const oldest of this.byCohort.keys()) {
        if (this.byCohort.size <= this.maxCohorts) break;
        this.byCohort.delete(oldest);
      }
    }
    const entry: RecordedEvidence = Object.freeze({ peerId: report.peerId, reportedAtMs: atMs, ...report.evidence, missedSteps: Object.freeze([...report.evidence.missedSteps]) });
    peers.set(report.peerId, entry);
    return entry;
  }

  /** In report order; empty when none arrived (or the cohort is older than the book keeps). */
  of(cohortId: string): RecordedEvidence[] {
    return [...(this.byCohort.get(cohortId)?.values() ?? [])];
  }
}

export interface CacheEvidenceRouteDeps {
  readonly runs: RunReader;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
  readonly book?: CacheEvidenceBook;
}

const cohortParams = z.object({ id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a cohort id') });

export function registerCacheEvidenceRoutes(app: FastifyInstance, deps: CacheEvidenceRouteDeps): CacheEvidenceBook {
  const book = deps.book ?? new CacheEvidenceBook();
  const badRequest = (message: string) => ({ error: { code: 'BAD_REQUEST', message } });

  app.post('/api/v1/cohorts/:id/cache-evidence', { bodyLimit: 64 * 1024 }, async (req, reply) => {
    const params = cohortParams.safeParse(req.params);
    if (!params.success) return reply.code(400).send(badRequest(describeProblems(problemsFromZod(params.error, ['params']), null)));
    const body = cacheEvidenceReportSchema.safeParse(req.body, { reportInput: true });
    if (!body.success) return reply.code(400).send(badRequest(describeProblems(problemsFromZod(body.error, ['body']), null)));
    const cohortId = params.data.id;
    const run = await deps.runs.cohortRun(cohortId);
    if (run === null) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no cohort ${cohortId}` } });
    const report = body.data;
    if (!run.peers.some((p) => p.peerId === report.peerId)) {
      return reply.code(409).send({ error: { code: 'NOT_A_MEMBER', message: `peer ${report.peerId} was not a member of cohort ${cohortId}` } });
    }
    const known = new Set(run.steps.map((s) => s.stepId));
    const unknown = report.evidence.missedSteps.filter((id) => !known.has(id));
    if (unknown.length > 0) return reply.code(400).send(badRequest(capText(`body.evidence.missedSteps: unknown step(s) ${unknown.join(', ')} in cohort ${cohortId}`)));
    const entry = book.record(cohortId, report, deps.clock.now());
    deps.log.info({ cohortId, peerId: entry.peerId, tool: entry.tool, hits: entry.hits, misses: entry.misses, missedSteps: entry.missedSteps }, 'cache evidence');
    return reply.code(201).send({ cohortId, evidence: entry });
  });

  app.get('/api/v1/cohorts/:id/cache-evidence', async (req, reply) => {
    const params = cohortParams.safeParse(req.params);
    if (!params.success) return reply.code(400).send(badRequest(describeProblems(problemsFromZod(params.error, ['params']), null)));
    const cohortId = params.data.id;
    if ((await deps.runs.cohortRun(cohortId)) === null) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no cohort ${cohortId}` } });
    return { cohortId, peers: book.of(cohortId) };
  });

  return book;
}
