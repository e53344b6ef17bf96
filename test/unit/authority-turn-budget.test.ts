import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Authority, type ConnectionSink, type TurnBudget } from '../../server/authority.js';
import { defaultCoreConfig, type CoreInput, type Effect } from '../../server/core/core-types.js';
import type { Write } from '../../server/core/records.js';
import { Scheduler } from '../../server/core/scheduler.js';
import type { SchedulerStore } from '../../server/core/store-port.js';
import { Metrics } from '../../server/http/metrics.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { schemaDigest } from '../../shared/schema-digest.js';
import { counterIds, registration } from '../helpers/core-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The turn budget (server/authority.ts, issue 11): inputs that arrive after one event-loop turn
 * has spent its budget wait for later turns, in order, each turn committed and delivered before
 * the next. The scheduler, the SQLite file and the event loop are real; only the budget's
 * monotonic clock is fake, moved by a fixed cost per input the core handles.
 */
const schema = flatSchema(4);

let dir: ReturnType<typeof tempDir>;
let store: SqliteStore;
let commits: number[];
let elapsed: number;
let delivered: Array<{ connId: number; effect: Effect }>;
/** What delivering one `joined` costs on the budget's clock, ms (0 unless a test sets it). */
let joinedCostMs: number;
/** Every authority a test built, stopped after it (a failed assertion must not leave one running into the next test). */
let built: Authority[];
/** While set, the next commit waits for the test (as one does for a background checkpoint holding the gate, or PostgreSQL). */
let hold: Promise<void> | null;

/** Each input the core handles costs `costMs` on the budget's clock. */
function build(costMs: number, budgetMs = 10, groupCommit = { windowMs: 0, maxPeers: 0 }, maxWaiting = 5_000): Authority {
  const scheduler = new Scheduler(defaultCoreConfig, counterIds());
  const handle = scheduler.handle.bind(scheduler);
  scheduler.handle = (input, nowMs) => {
    elapsed += costMs;
    return handle(input, nowMs);
  };
  const own = store.scheduler;
  const counted: SchedulerStore = {
    load: (now, retention) => own.load(now, retention),
    apply: (writes: readonly Write[]) => {
      if (writes.length > 0) commits.push(writes.length);
      if (hold === null) return own.apply(writes);
      const held = hold;
      hold = null;
      return held.then(() => own.apply(writes));
    },
    recordCacheEvidence: (cohortId, evidence) => own.recordCacheEvidence(cohortId, evidence),
    close: () => undefined,
  };
  const turn: TurnBudget = { budgetMs, elapsedMs: () => elapsed, maxWaiting };
  const metrics = new Metrics(() => ({ peersConnected: 0, cohortsOpen: 0, leasesLive: 0 }));
  const authority = new Authority(scheduler, counted, new FakeClock(), pino({ level: 'silent' }), metrics, 60_000, (err) => {
    throw err;
  }, groupCommit, turn);
  built.push(authority);
  return authority;
}

function sink(authority: Authority): number {
  const holder: { connId: number } = { connId: 0 };
  const s: ConnectionSink = {
    deliver: (effect) => {
      if (effect.kind === 'joined') elapsed += joinedCostMs;
      delivered.push({ connId: holder.connId, effect });
    },
    close: () => undefined,
  };
  holder.connId = authority.openConnection(s);
  return holder.connId;
}

function hello(connId: number, peerId: string): CoreInput {
  return {
    kind: 'hello',
    connId,
    peerId,
    registration: registration(),
    schema,
    digest: schemaDigest(schema),
    presentedToken: null,
    freshToken: { token: `tok-${peerId}`, hash: `h-${peerId}` },
    currentStep: null,
    resumable: true,
  };
}

/** Resolves after `n` more turns of the real event loop (a turn's flush runs in its check phase). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A started authority whose three hellos cost 20 ms each: the first is handled in its turn, two wait. */
async function threeHellosOverBudget(): Promise<{ authority: Authority; conns: number[] }> {
  const authority = build(20);
  await authority.start();
  await turns(2);
  const conns = Array.from({ length: 3 }, () => sink(authority));
  conns.forEach((c, i) => authority.submit(hello(c, `p${i}`)));
  expect(authority.deferredCount).toBe(2);
  return { authority, conns };
}

const welcomed = (): number[] => delivered.filter((d) => d.effect.kind === 'joined').map((d) => d.connId);

beforeEach(() => {
  dir = tempDir('taskshard-turn-budget-');
  store = new SqliteStore(dir.file('t.db'));
  commits = [];
  elapsed = 0;
  delivered = [];
  joinedCostMs = 0;
  built = [];
  hold = null;
});

afterEach(async () => {
  for (const authority of built) await authority.stop();
  store.close();
  dir.remove();
});

describe('the turn budget', () => {
  it('handles inputs as they come until the turn has spent its budget, then the rest in later turns of at most the budget, in order', async () => {
    const authority = build(4);
    await authority.start();
    await turns(2);
    commits = [];
    const conns = Array.from({ length: 8 }, () => sink(authority));
    conns.forEach((c, i) => authority.submit(hello(c, `p${i}`)));
    // 4 ms each: the first three are handled (0, 4, 8 < 10 ms), the fourth finds 12 ms spent and waits, and so do the rest.
    expect(authority.deferredCount).toBe(5);
    expect(welcomed()).toEqual([]); // nothing leaves before its commit
    await turns(1);
    expect(welcomed()).toEqual(conns.slice(0, 3));
    expect(commits).toHaveLength(1);
    await turns(1);
    // The next turn takes waiting inputs for up to the budget: three again (0, 4, 8), then commits and delivers them.
    expect(welcomed()).toEqual(conns.slice(0, 6));
    expect(authority.deferredCount).toBe(2);
    await turns(1);
    expect(welcomed()).toEqual(conns);
    expect(authority.deferredCount).toBe(0);
    expect(commits).toHaveLength(3);
    expect(authority.dump().peers.map((p) => p.peerId).sort()).toEqual(conns.map((_, i) => `p${i}`).sort());
    await authority.stop();
  });

  it('counts the commit and delivery a turn\'s inputs will cost, as recent turns measured it, so a whole turn stays near the budget', async () => {
    const authority = build(1);
    await authority.start();
    await turns(2);
    commits = [];
    joinedCostMs = 3;
    const conns = Array.from({ length: 16 }, () => sink(authority));
    conns.forEach((c, i) => authority.submit(hello(c, `p${i}`)));
    // Nothing measured yet: 10 inputs of 1 ms (0..9 ms spent when each is taken), then 30 ms of delivery in the same turn.
    expect(authority.deferredCount).toBe(6);
    await turns(1);
    expect(welcomed()).toEqual(conns.slice(0, 10));
    const before = elapsed;
    await turns(1);
    // Now 3 ms of delivery per input is counted ahead: 1 + 3, 2 + 6 and 3 + 9 ms, so three inputs, a 12 ms turn instead of 40.
    expect(welcomed()).toEqual(conns.slice(0, 13));
    expect(elapsed - before).toBe(12);
    await authority.settled();
    expect(welcomed()).toEqual(conns);
    expect(commits).toHaveLength(3);
    await authority.stop();
  });

  it('holds inputs that arrive while a commit is in flight, then takes them in turns of at most the budget', async () => {
    const authority = build(1);
    await authority.start();
    await turns(2);
    commits = [];
    let release = (): void => undefined;
    hold = new Promise<void>((resolve) => (release = resolve));
    const first = sink(authority);
    authority.submit(hello(first, 'p0'));
    await turns(1); // its commit is in flight, waiting
    expect(commits).toHaveLength(1);
    const later = Array.from({ length: 30 }, () => sink(authority));
    later.forEach((c, i) => authority.submit(hello(c, `q${i}`)));
    // 30 ms of inputs: none is handled while the commit waits (handled now, they would all commit and deliver in one turn after it).
    expect(authority.deferredCount).toBe(30);
    expect(authority.dump().peers.map((p) => p.peerId)).toEqual(['p0']);
    release();
    await turns(10);
    expect(authority.deferredCount).toBe(0);
    expect(welcomed()).toEqual([first, ...later]);
    // After the held commit: 10 ms of inputs per turn (1 ms each), each turn its own commit.
    expect(commits).toHaveLength(4);
    await authority.stop();
  });

  it('counts every deferred input in taskshard_inputs_deferred_total', async () => {
    const metrics = new Metrics(() => ({ peersConnected: 0, cohortsOpen: 0, leasesLive: 0 }));
    const scheduler = new Scheduler(defaultCoreConfig, counterIds());
    const handle = scheduler.handle.bind(scheduler);
    scheduler.handle = (input, nowMs) => {
      elapsed += 6;
      return handle(input, nowMs);
    };
    const authority = new Authority(scheduler, store.scheduler, new FakeClock(), pino({ level: 'silent' }), metrics, 60_000, (err) => {
      throw err;
    }, { windowMs: 0, maxPeers: 0 }, { budgetMs: 10, elapsedMs: () => elapsed, maxWaiting: 5_000 });
    built.push(authority);
    await authority.start();
    await turns(2);
    const conns = Array.from({ length: 4 }, () => sink(authority));
    conns.forEach((c, i) => authority.submit(hello(c, `p${i}`)));
    expect(authority.deferredCount).toBe(2);
    await authority.settled();
    expect(await metrics.registry.getSingleMetricAsString('taskshard_inputs_deferred_total')).toMatch(/^taskshard_inputs_deferred_total 2$/m);
    await authority.stop();
  });

  it('keeps a transport effect behind the inputs that arrived before it', async () => {
    const authority = build(6);
    await authority.start();
    await turns(2);
    const a = sink(authority);
    const b = sink(authority);
    authority.submit(hello(a, 'pa'));
    authority.submit(hello(b, 'pb')); // 6 ms spent: handled
    authority.submit({ kind: 'bye', connId: a }); // 12 ms spent: waits
    authority.enqueue({ kind: 'close', connId: a, code: 1000, reason: 'bye' });
    expect(authority.deferredCount).toBe(2);
    await authority.settled();
    const forA = delivered.filter((d) => d.connId === a).map((d) => d.effect.kind);
    expect(forA.indexOf('close')).toBe(forA.length - 1);
    expect(forA[0]).toBe('joined');
    await authority.stop();
  });

  it('settled() and an admin input handle waiting inputs first, whatever the budget', async () => {
    const { authority, conns } = await threeHellosOverBudget();
    const cohortId = authority.dump().cohorts[0]!.cohortId;
    const result = await authority.submitNow({ kind: 'cancel', cohortId });
    expect(result).toEqual({ ok: true });
    expect(authority.deferredCount).toBe(0);
    // Every hello was handled before the cancel: all three joined the cohort it cancelled.
    expect(authority.dump().peers.filter((p) => p.cohortId === cohortId)).toHaveLength(3);
    expect(welcomed()).toEqual(conns);
    await authority.stop();
  });

  it('does not apply while a group-commit window gathers the batch (it spans turns on purpose)', async () => {
    const authority = build(6, 10, { windowMs: 1, maxPeers: 32 });
    await authority.start();
    await authority.settled();
    const conns = Array.from({ length: 4 }, () => sink(authority));
    conns.forEach((c, i) => authority.submit(hello(c, `p${i}`)));
    expect(authority.deferredCount).toBe(0);
    await authority.settled();
    expect(welcomed()).toEqual(conns);
    await authority.stop();
  });

  it('handles the oldest waiting input at once when maxWaiting are already waiting (bounded memory, order kept)', async () => {
    const authority = build(20, 10, { windowMs: 0, maxPeers: 0 }, 2);
    await authority.start();
    await turns(2);
    const conns = Array.from({ length: 6 }, () => sink(authority));
    conns.forEach((c, i) => {
      authority.submit(hello(c, `p${i}`));
      expect(authority.deferredCount).toBeLessThanOrEqual(2);
    });
    // p0 handled in its turn, p1..p3 pushed out of the full queue in order, p4 and p5 wait.
    expect(authority.deferredCount).toBe(2);
    await turns(1);
    expect(welcomed()).toEqual(conns.slice(0, 4));
    await authority.settled();
    expect(welcomed()).toEqual(conns);
  });

  it('stop() handles and commits what waits before it stops', async () => {
    const { authority } = await threeHellosOverBudget();
    await authority.stop();
    expect(authority.deferredCount).toBe(0);
    expect(store.scheduler.load(0, 60_000).peers).toHaveLength(3);
  });
});
