import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { safeIdSchema } from '../../shared/ids.js';
import { limits } from '../../shared/limits.js';
import { describeProblems } from '../../shared/frames.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import type { Authority } from '../authority.js';
import type { ServerConfig } from '../config.js';
import type { ReadModel } from '../core/read-model.js';
import type { StoreHealth } from '../core/store-port.js';
import { cohortDetailJson, cohortJson, peerJson } from './api-views.js';
import type { Metrics } from './metrics.js';
import { runOfDetail, type RunReader } from './run-reader.js';
import { cohortOutcome, failureCauses, outcomeName } from './run-timeline.js';
import { normalizeRepo } from '../../shared/repo-url.js';

/**
 * REST: health, metrics, read-only views of cohorts and peers, and the two
 * admin mutations (admin token required). Errors are `{ error: { code, message } }`.
 */
export interface ApiDeps {
  readonly authority: Authority;
  /** Every read goes through the store's read model; routes hold no database handle. */
  readonly readModel: ReadModel;
  /** Runs with leases and events: outcome, failure causes and log tails. */
  readonly runs: RunReader;
  readonly metrics: Metrics;
  readonly config: ServerConfig;
  readonly version: string;
  readonly startedAtMs: number;
  /** The store's state, reported by /healthz. */
  readonly storeHealth: () => StoreHealth;
}

const cohortIdSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a cohort id');
const listQuery = z.strictObject({
  status: z.string().max(32).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const cohortListQuery = listQuery.extend({
  status: z.enum(['open', 'complete', 'cancelled']).optional(),
  // Repos are stored normalized (shared/repo-url.ts): any spelling of one finds its cohorts.
  repo: z.string().min(1).max(limits.maxRepoLength).transform(normalizeRepo).optional(),
  /** A pipeline name some peer of the cohort registered with. */
  pipeline: z.string().min(1).max(limits.maxNameLength).optional(),
  pipelineType: z.enum(['independent', 'dependent']).optional(),
  /** How it ended; `running` is the same as status=open. */
  outcome: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'abandoned']).optional(),
  /** A page cursor: the `next` of the page before (`<created ms>:<cohort id>`). */
  before: z
    .string()
    .max(160)
    .regex(/^\d{1,16}:[A-Za-z0-9_.:-]{1,128}$/, 'must be a page cursor (the `next` of the page before)')
    .transform((v) => ({ createdBeforeMs: Number(v.slice(0, v.indexOf(':'))), beforeCohortId: v.slice(v.indexOf(':') + 1) }))
    .optional(),
});
const peerListQuery = listQuery.extend({
  status: z.enum(['connected', 'disconnected', 'gone', 'left']).optional(),
  cohort: cohortIdSchema.optional(),
});

function apiError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

function parseOr400<T>(schema: z.ZodType<T>, value: unknown, where: string, reply: FastifyReply): T | null {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  void apiError(reply, 400, 'BAD_REQUEST', describeProblems(problemsFromZod(parsed.error, [where]), null));
  return null;
}

export function registerApiRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { authority, readModel, metrics } = deps;

  app.get('/healthz', { config: { access: 'public' } }, async (_req, reply) => {
    const store = deps.storeHealth();
    const state = authority.isStopped || store.status !== 'ok' ? 'stopped' : authority.isDraining ? 'draining' : 'ok';
    return reply
      .code(state === 'ok' ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ status: state, version: deps.version, uptimeSec: Math.round((Date.now() - deps.startedAtMs) / 1000), store });
  });

  // Probes for a load balancer or orchestrator: alive, and ready for peers (a standby answers 503; server/ha).
  app.get('/livez', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { access: 'public' } }, async (_req, reply) => {
    const ready = !authority.isStopped && !authority.isDraining;
    return reply.code(ready ? 200 : 503).header('cache-control', 'no-store').send({ status: ready ? 'active' : authority.isStopped ? 'stopped' : 'draining' });
  });

  app.get('/metrics', { config: { access: 'public' } }, async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });

  // Reads (the routes below without an `access`) need the peer or admin token when one is set: see route-access.ts.
  app.get('/api/v1/cohorts', async (req, reply) => {
    const query = parseOr400(cohortListQuery, req.query, 'query', reply);
    if (!query) return reply;
    const { pipeline, outcome, before, ...filter } = query;
    if (outcome !== undefined && filter.status !== undefined && (outcome === 'running') !== (filter.status === 'open')) {
      return apiError(reply, 400, 'BAD_REQUEST', `query: outcome=${outcome} contradicts status=${filter.status}`);
    }
    const cohorts = await readModel.listCohorts({
      ...filter,
      ...(pipeline === undefined ? {} : { pipelineName: pipeline }),
      ...(outcome === undefined ? {} : outcome === 'running' ? { status: 'open' as const } : { outcome }),
      ...(before ?? {}),
    });
    // A full page may have more behind it: `next` is the cursor for `?before=`.
    const last = cohorts.length === filter.limit ? cohorts[cohorts.length - 1] : undefined;
    return {
      cohorts: cohorts.map((c) => ({ ...cohortJson(c), outcome: c.status === 'open' ? null : outcomeName(c.outcome) })),
      next: last === undefined ? null : `${last.createdAtMs}:${last.cohortId}`,
    };
  });

  app.get('/api/v1/cohorts/:id', async (req, reply) => {
    const params = parseOr400(z.object({ id: cohortIdSchema }), req.params, 'params', reply);
    if (!params) return reply;
    const detail = await readModel.cohortDetail(params.id);
    if (!detail) return apiError(reply, 404, 'NOT_FOUND', `no cohort ${params.id}`);
    const run = runOfDetail(detail);
    const json = cohortDetailJson(detail);
    // What each peer's universe took from the remote cache (--build-tool; cache-evidence-route.ts).
    const cacheEvidence = await readModel.cacheEvidence(params.id);
    return { ...json, cohort: { ...json.cohort, outcome: cohortOutcome(run) }, failures: failureCauses(run.steps), cacheEvidence };
  });

  app.get('/api/v1/peers', async (req, reply) => {
    const query = parseOr400(peerListQuery, req.query, 'query', reply);
    if (!query) return reply;
    const { cohort, status, ...filter } = query;
    const peers = await readModel.listPeers({ ...filter, ...(status === undefined ? {} : { statuses: [status] }), ...(cohort === undefined ? {} : { cohortId: cohort }) });
    return { peers: peers.map(peerJson) };
  });

  // GET /api/v1/stats is in run-routes.ts: its runner time comes from the trends.

  // Admin routes: the admin token, never the peer token, checked in onRequest before the body (route-access.ts).
  app.post('/api/v1/cohorts/:id/cancel', { config: { access: 'admin' } }, async (req, reply) => {
    const params = parseOr400(z.object({ id: cohortIdSchema }), req.params, 'params', reply);
    if (!params) return reply;
    const result = await authority.submitNow({ kind: 'cancel', cohortId: params.id });
    if (!result.ok) return apiError(reply, result.status, result.code, result.message);
    req.log.info({ cohortId: params.id }, 'cohort cancelled by admin');
    return { ok: true };
  });

  app.post('/api/v1/cohorts/:id/steps/:step/retry', { config: { access: 'admin' } }, async (req, reply) => {
    const params = parseOr400(z.object({ id: cohortIdSchema, step: safeIdSchema }), req.params, 'params', reply);
    if (!params) return reply;
    const result = await authority.submitNow({ kind: 'retry', cohortId: params.id, stepId: params.step });
    if (!result.ok) return apiError(reply, result.status, result.code, result.message);
    req.log.info({ cohortId: params.id, stepId: params.step }, 'step retried by admin');
    return { ok: true };
  });
}
