import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { describeProblems } from '../../shared/frames.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import type { Clock } from '../core/clock.js';
import type { ReadModel } from '../core/read-model.js';
import type { RunReader } from './run-reader.js';
import { runTimeline, type RunTimeline } from './run-timeline.js';
import { TrendCache } from './trend-cache.js';
import { traceOf } from './trace-export.js';

/**
 * Read routes behind the dashboard and `taskshard cohort`: a run's timeline,
 * its Chrome/Perfetto trace, what connected peers are doing, and trends.
 * Auth is the read API's (the preHandler on GET /api/).
 */
export interface RunRouteDeps {
  readonly runs: RunReader;
  /** For the totals of `/api/v1/stats`. */
  readonly readModel: ReadModel;
  readonly clock: Clock;
  /** Trends per day, fed with the authority's commits (app.ts); a fresh one when absent. */
  readonly trends?: TrendCache;
}

const cohortParams = z.object({ id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a cohort id') });

/** `?days=` of the trends and stats: whole UTC days, today included. */
export const trendsQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(90).default(14) });

function parseOr400<T>(schema: z.ZodType<T>, value: unknown, where: string, reply: FastifyReply): T | null {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  void reply.code(400).send({ error: { code: 'BAD_REQUEST', message: describeProblems(problemsFromZod(parsed.error, [where]), null) } });
  return null;
}

/** What a live peer is doing, read off the last bar of its lane. */
export function peerActivity(timeline: RunTimeline | null, peerId: string): { doing: string; stepId: string | null } {
  const lane = timeline?.lanes.find((l) => l.peerId === peerId);
  const last = lane?.bars[lane.bars.length - 1];
  if (!timeline || !lane) return { doing: 'unknown', stepId: null };
  if (last?.open && last.kind === 'running') return { doing: last.backup ? 'building (backup copy)' : 'building', stepId: last.stepId };
  if (last?.open && last.kind === 'universe') return { doing: 'building its universe', stepId: null };
  if (timeline.outcome !== null) return { doing: `finishing (${timeline.outcome})`, stepId: null };
  return { doing: 'waiting: nothing assignable', stepId: null };
}

export function registerRunRoutes(app: FastifyInstance, deps: RunRouteDeps): void {
  const { runs, clock } = deps;
  const trends = deps.trends ?? new TrendCache(runs);
  const timelineOf = async (cohortId: string): Promise<RunTimeline | null> => {
    const run = await runs.cohortRun(cohortId);
    return run ? runTimeline(run, clock.now()) : null;
  };

  app.get('/api/v1/cohorts/:id/timeline', async (req, reply) => {
    const params = parseOr400(cohortParams, req.params, 'params', reply);
    if (!params) return reply;
    const timeline = await timelineOf(params.id);
    if (!timeline) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no cohort ${params.id}` } });
    return timeline;
  });

  app.get('/api/v1/cohorts/:id/trace', async (req, reply) => {
    const params = parseOr400(cohortParams, req.params, 'params', reply);
    if (!params) return reply;
    const timeline = await timelineOf(params.id);
    if (!timeline) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no cohort ${params.id}` } });
    return reply.header('content-disposition', `inline; filename="taskshard-${params.id}.trace.json"`).send(traceOf(timeline));
  });

  app.get('/api/v1/peers/live', async () => {
    const cache = new Map<string, RunTimeline | null>();
    const peers = [];
    for (const p of await runs.livePeers(500)) {
      if (!cache.has(p.cohortId)) cache.set(p.cohortId, await timelineOf(p.cohortId));
      peers.push({ ...p, joinedAt: new Date(p.joinedAtMs).toISOString(), ...peerActivity(cache.get(p.cohortId) ?? null, p.peerId) });
    }
    return { peers };
  });

  app.get('/api/v1/trends', async (req, reply) => {
    const query = parseOr400(trendsQuery, req.query, 'query', reply);
    if (!query) return reply;
    return trends.window(clock.now(), query.days);
  });

  // Totals, with time saved in both units, labelled: build time over the stored history (`secondsSaved`,
  // as before) and, over the last `days` UTC days, build time saved, runner time used and runner time saved.
  app.get('/api/v1/stats', async (req, reply) => {
    const query = parseOr400(trendsQuery, req.query, 'query', reply);
    if (!query) return reply;
    const totals = await deps.readModel.stats();
    const window = await trends.window(clock.now(), query.days);
    const sum = (pick: (r: (typeof window.rows)[number]) => number): number => Math.round(window.rows.reduce((s, r) => s + pick(r), 0) * 10) / 10;
    return {
      ...totals,
      window: { days: window.days, runs: window.runs, truncated: window.truncated },
      buildTime: { savedSec: sum((r) => r.savedBuildSec) },
      runnerTime: { usedSec: sum((r) => r.runnerSec), savedSec: sum((r) => r.savedRunnerSec) },
    };
  });
}
