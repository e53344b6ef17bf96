import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { describeProblems } from '../../shared/frames.js';
import { problemsFromZod } from '../../shared/zod-issues.js';
import type { Clock } from '../core/clock.js';
import type { RunReader } from './run-reader.js';
import { runTimeline, type RunTimeline } from './run-timeline.js';
import { trendRows } from './run-trends.js';
import { traceOf } from './trace-export.js';

/**
 * Read routes behind the dashboard and `taskshard cohort`: a run's timeline,
 * its Chrome/Perfetto trace, what connected peers are doing, and trends.
 * Auth is the read API's (the preHandler on GET /api/).
 */
export interface RunRouteDeps {
  readonly runs: RunReader;
  readonly clock: Clock;
}

const cohortParams = z.object({ id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a cohort id') });
const trendsQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(90).default(14) });

/** At most this many runs feed the Trends page (newest first), so the page costs the same on a busy day. */
export const maxTrendRuns = 500;

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
    const now = clock.now();
    const ids = await runs.recentCohortIds(now - query.days * 86_400_000, maxTrendRuns);
    const timelines: RunTimeline[] = [];
    for (const id of ids) {
      const timeline = await timelineOf(id);
      if (timeline) timelines.push(timeline);
    }
    return { days: query.days, runs: timelines.length, truncated: ids.length === maxTrendRuns, rows: trendRows(timelines) };
  });
}
