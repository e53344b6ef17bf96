import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { z } from 'zod';
import { cacheEvidenceReportSchema } from '../../shared/protocol.js';
import { describeProblems } from '../../shared/frames.js';
import { capText } from '../../shared/text-caps.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import type { Clock } from '../core/clock.js';
import type { CacheEvidenceView, ReadModel } from '../core/read-model.js';
import type { SchedulerStore } from '../core/store-port.js';
import type { ServerConfig } from '../config.js';
import { bearerToken } from './auth.js';
import { isReaderToken, readsNeedToken } from './reader-auth.js';
import type { RunReader } from './run-reader.js';

/**
 * Cache evidence (#14): after its universe build a peer with `--build-tool` posts what came from
 * the remote cache (`POST /api/v1/cohorts/:id/cache-evidence`, body `cacheEvidenceReportSchema`,
 * at most {@link maxEvidenceBodyBytes}); `GET /api/v1/cohorts/:id/cache-evidence` lists it per
 * peer (so does `GET /api/v1/cohorts/:id`), so "why did this rebuild?" has an answer. Only a peer
 * that was a member of the cohort may report for it, once per peer (a later report replaces the
 * earlier one), so a cohort holds at most one row per member. The evidence is stored with the
 * cohort (`cache_evidence`, pruned with it), logged, and pushed to the dashboard's event stream.
 *
 * Posting is a write: it takes the peer or admin token as a Bearer header when the authority has
 * tokens, never the dashboard's login cookie (a page must not post on a reader's behalf).
 */

export const maxEvidenceBodyBytes = 64 * 1024;

export interface CacheEvidenceRouteDeps {
  readonly runs: RunReader;
  /** Where evidence is written: the store's own scheduler part (not the authority's, it is no batch). */
  readonly scheduler: Pick<SchedulerStore, 'recordCacheEvidence'>;
  readonly readModel: Pick<ReadModel, 'cacheEvidence'>;
  readonly config: Pick<ServerConfig, 'peerToken' | 'adminToken'>;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
  /** Told of every stored report (the dashboard's live stream). */
  readonly onRecorded?: (cohortId: string, evidence: CacheEvidenceView) => void;
}

const cohortParams = z.object({ id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a cohort id') });

export function registerCacheEvidenceRoutes(app: FastifyInstance, deps: CacheEvidenceRouteDeps): void {
  const badRequest = (message: string) => ({ error: { code: 'BAD_REQUEST', message } });

  app.post('/api/v1/cohorts/:id/cache-evidence', { bodyLimit: maxEvidenceBodyBytes }, async (req, reply) => {
    if (readsNeedToken(deps.config) && !isReaderToken(bearerToken(req.headers), deps.config)) {
      return reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'posting cache evidence needs "Authorization: Bearer <peer or admin token>"' } });
    }
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
    const { source, ...counts } = report.evidence;
    if (source === 'output' && counts.missedSteps.length > 0) return reply.code(400).send(badRequest('body.evidence.missedSteps: must be empty when source is "output" (a summary line names no steps)'));
    const entry: CacheEvidenceView = { peerId: report.peerId, reportedAtMs: deps.clock.now(), ...counts, missedSteps: [...new Set(counts.missedSteps)], source: source ?? 'record' };
    await deps.scheduler.recordCacheEvidence(cohortId, entry);
    deps.log.info({ cohortId, peerId: entry.peerId, tool: entry.tool, hits: entry.hits, misses: entry.misses, missedSteps: entry.missedSteps, source: entry.source }, 'cache evidence');
    deps.onRecorded?.(cohortId, entry);
    return reply.code(201).send({ cohortId, evidence: entry });
  });

  app.get('/api/v1/cohorts/:id/cache-evidence', async (req, reply) => {
    const params = cohortParams.safeParse(req.params);
    if (!params.success) return reply.code(400).send(badRequest(describeProblems(problemsFromZod(params.error, ['params']), null)));
    const cohortId = params.data.id;
    if ((await deps.runs.cohortRun(cohortId)) === null) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no cohort ${cohortId}` } });
    return { cohortId, peers: await deps.readModel.cacheEvidence(cohortId) };
  });
}
