import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { z } from 'zod';
import { describeProblems } from '../../shared/frames.js';
import { universeReportSchema } from '../../shared/protocol.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import type { Clock } from '../core/clock.js';
import type { Write } from '../core/records.js';
import type { SchedulerStore } from '../core/store-port.js';
import type { ServerConfig } from '../config.js';
import { bearerToken } from './auth.js';
import { isReaderToken, readsNeedToken } from './reader-auth.js';
import type { RunReader } from './run-reader.js';
import { universeBuiltKind, universeDetail } from './universe-build.js';

/**
 * `POST /api/v1/cohorts/:id/universe`: a member peer reports its universe build once it ended
 * (body `universeReportSchema`). The authority's clock places it: the report's arrival is the end,
 * `durationMs` before that the start. It is stored as a `universe.built` event of the cohort
 * (committed through the scheduler store, so the log, the live stream and the trends hear of it
 * like any other commit), at most once per peer. Posting is a write: the peer or admin token as a
 * Bearer header when the authority has tokens, never the dashboard's cookie.
 */
export interface UniverseRouteDeps {
  readonly runs: RunReader;
  /** The authority's observed store: the event commits like a batch of the core's. */
  readonly store: Pick<SchedulerStore, 'apply'>;
  readonly config: Pick<ServerConfig, 'peerToken' | 'adminToken'>;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
}

const cohortParams = z.object({ id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a cohort id') });

export function registerUniverseRoute(app: FastifyInstance, deps: UniverseRouteDeps): void {
  const error = (code: string, message: string) => ({ error: { code, message } });
  app.post('/api/v1/cohorts/:id/universe', { bodyLimit: 4096 }, async (req, reply) => {
    if (readsNeedToken(deps.config) && !isReaderToken(bearerToken(req.headers), deps.config)) {
      return reply.code(401).send(error('UNAUTHORIZED', 'reporting a universe build needs "Authorization: Bearer <peer or admin token>"'));
    }
    const params = cohortParams.safeParse(req.params);
    if (!params.success) return reply.code(400).send(error('BAD_REQUEST', describeProblems(problemsFromZod(params.error, ['params']), null)));
    const body = universeReportSchema.safeParse(req.body, { reportInput: true });
    if (!body.success) return reply.code(400).send(error('BAD_REQUEST', describeProblems(problemsFromZod(body.error, ['body']), null)));
    const cohortId = params.data.id;
    const report = body.data;
    const run = await deps.runs.cohortRun(cohortId);
    if (run === null) return reply.code(404).send(error('NOT_FOUND', `no cohort ${cohortId}`));
    const peer = run.peers.find((p) => p.peerId === report.peerId);
    if (!peer) return reply.code(409).send(error('NOT_A_MEMBER', `peer ${report.peerId} was not a member of cohort ${cohortId}`));
    if (run.cohort.status === 'open') return reply.code(409).send(error('COHORT_OPEN', `cohort ${cohortId} is still open: a peer builds its universe after complete`));
    if (run.events.some((e) => e.kind === universeBuiltKind && e.peerId === report.peerId)) {
      return reply.code(409).send(error('ALREADY_REPORTED', `peer ${report.peerId} already reported its universe build in cohort ${cohortId}`));
    }
    const endedAtMs = deps.clock.now();
    const startedAtMs = Math.max(endedAtMs - report.durationMs, peer.joinedAtMs);
    const write: Write = {
      table: 'event',
      row: { cohortId, atMs: endedAtMs, kind: universeBuiltKind, stepId: null, peerId: report.peerId, detail: universeDetail({ startedAtMs, ok: report.ok, exitCode: report.exitCode }) },
    };
    await deps.store.apply([write]);
    return reply.code(201).send({ cohortId, peerId: report.peerId, startedAtMs, endedAtMs, ok: report.ok, exitCode: report.exitCode });
  });
}
