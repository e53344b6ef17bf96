import type { FastifyInstance } from 'fastify';
import type { CacheEvidenceView } from '../core/read-model.js';
import type { Write } from '../core/records.js';
import type { SchedulerStore } from '../core/store-port.js';

/**
 * Live updates for the dashboard, derived from what the authority commits:
 * every batch of writes that reached the database becomes one message per
 * cohort it touched (and one `peers` message when a peer row changed), pushed
 * to browsers over Server-Sent Events. Nothing is sent for a batch that
 * failed to commit, so a browser never sees state the database does not hold.
 */

export interface CohortChange {
  readonly cohortId: string;
  /** The cohort's status when this batch wrote its row, else null. */
  readonly status: string | null;
  /** Event kinds the batch logged for this cohort (`step.succeeded`, `peer.joined`, ...), in order. */
  readonly kinds: readonly string[];
}

export interface LiveBatch {
  readonly cohorts: readonly CohortChange[];
  readonly peersChanged: boolean;
  /** Cache evidence a peer reported (stored outside the batches: cache-evidence-route.ts). */
  readonly evidence?: { readonly cohortId: string; readonly evidence: CacheEvidenceView };
}

/** Groups a committed batch by cohort. */
export function liveBatchOf(writes: readonly Write[]): LiveBatch {
  const byCohort = new Map<string, { status: string | null; kinds: string[] }>();
  let peersChanged = false;
  const touch = (cohortId: string): { status: string | null; kinds: string[] } => {
    let entry = byCohort.get(cohortId);
    if (!entry) byCohort.set(cohortId, (entry = { status: null, kinds: [] }));
    return entry;
  };
  for (const w of writes) {
    switch (w.table) {
      case 'cohort':
        touch(w.row.cohortId).status = w.row.status;
        break;
      case 'step':
      case 'lease':
        touch(w.row.cohortId);
        break;
      case 'peer':
        touch(w.row.cohortId);
        peersChanged = true;
        break;
      case 'event':
        touch(w.row.cohortId).kinds.push(w.row.kind);
        break;
      default:
        break;
    }
  }
  return { cohorts: [...byCohort].map(([cohortId, e]) => ({ cohortId, status: e.status, kinds: e.kinds })), peersChanged };
}

/**
 * The cohorts a committed batch touched, each once, in first-touch order: what a cache keyed by
 * cohort must forget (trend-cache.ts). Cheaper than {@link liveBatchOf} (no event kinds, no
 * statuses); callers that hold nothing to forget need not call it at all.
 */
export function touchedCohortIds(writes: readonly Write[]): Set<string> {
  const ids = new Set<string>();
  for (const w of writes) {
    const id = cohortIdOf(w);
    if (id !== null) ids.add(id);
  }
  return ids;
}

/** The cohort a write belongs to, or null (memos, durations and other rows of no cohort). */
function cohortIdOf(w: Write): string | null {
  switch (w.table) {
    case 'cohort':
    case 'step':
    case 'lease':
    case 'peer':
    case 'event':
      return w.row.cohortId;
    default:
      return null;
  }
}

/**
 * Wraps the scheduler's store so `onCommit` sees every batch after it committed.
 * A listener that throws is reported to `onListenerError` and never turns a
 * good commit into a failed one.
 */
export function observeCommits(store: SchedulerStore, onCommit: (writes: readonly Write[]) => void, onListenerError: (err: Error) => void): SchedulerStore {
  return {
    load: (nowMs, retentionMs) => store.load(nowMs, retentionMs),
    apply(writes) {
      const notify = (): void => {
        if (writes.length === 0) return;
        try {
          onCommit(writes);
        } catch (err) {
          onListenerError(err as Error);
        }
      };
      const commit = store.apply(writes);
      // An asynchronous store: listeners hear of the batch once it has committed.
      if (commit !== undefined) return commit.then(notify);
      notify();
    },
    recordCacheEvidence: (cohortId, evidence) => store.recordCacheEvidence(cohortId, evidence),
    close: () => store.close(),
  };
}

type Subscriber = (batch: LiveBatch) => void;

/** Fans committed batches out to subscribers (one per open event stream). */
export class LiveHub {
  private readonly subscribers = new Set<Subscriber>();
  private readonly closers = new Set<() => void>();

  publish(writes: readonly Write[]): void {
    if (this.subscribers.size === 0) return;
    const batch = liveBatchOf(writes);
    for (const s of this.subscribers) s(batch);
  }

  /** A peer's stored cache evidence, pushed as a `cache-evidence` event. */
  publishEvidence(cohortId: string, evidence: CacheEvidenceView): void {
    for (const s of this.subscribers) s({ cohorts: [], peersChanged: false, evidence: { cohortId, evidence } });
  }

  subscribe(subscriber: Subscriber, close: () => void): () => void {
    this.subscribers.add(subscriber);
    this.closers.add(close);
    return () => {
      this.subscribers.delete(subscriber);
      this.closers.delete(close);
    };
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Ends every open stream (on shutdown: an open SSE response would keep the server from closing). */
  closeAll(): void {
    for (const close of [...this.closers]) close();
  }
}

/** Seconds between comment lines that keep proxies from closing an idle stream. */
const keepAliveMs = 25_000;

/**
 * `GET /api/v1/events[?cohort=ID]`: `text/event-stream` of `cohort` events
 * (data: a {@link CohortChange}), `peers` events and `cache-evidence` events
 * (data: `{ cohortId, evidence }`, the stored entry). Auth is the read access of
 * route-access.ts (a route that declares none needs a reader token).
 */
export function registerEventStream(app: FastifyInstance, hub: LiveHub): void {
  app.addHook('preClose', (done) => {
    hub.closeAll();
    done();
  });
  app.get('/api/v1/events', async (req, reply) => {
    const cohortFilter = typeof (req.query as Record<string, unknown>).cohort === 'string' ? String((req.query as Record<string, unknown>).cohort) : null;
    reply.hijack();
    // A stream outlives --request-timeout's idle limit on HTTP connections (app.ts); its keep-alives are the liveness.
    req.raw.socket.setTimeout(0);
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n: connected\n\n');
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    keepAlive.unref();
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(keepAlive);
      unsubscribe();
      res.end();
    };
    const unsubscribe = hub.subscribe((batch) => {
      for (const change of batch.cohorts) {
        if (cohortFilter !== null && change.cohortId !== cohortFilter) continue;
        res.write(`event: cohort\ndata: ${JSON.stringify(change)}\n\n`);
      }
      if (batch.peersChanged && cohortFilter === null) res.write('event: peers\ndata: {}\n\n');
      if (batch.evidence && (cohortFilter === null || batch.evidence.cohortId === cohortFilter)) res.write(`event: cache-evidence\ndata: ${JSON.stringify(batch.evidence)}\n\n`);
    }, end);
    req.raw.on('close', end);
  });
}
