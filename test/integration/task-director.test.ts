import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ServerConfigInput } from '../../server/config.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isBuild, isError, isSchemaComplete, runLikeOriginal, TdClient, tdUrl, type InitOptions } from '../helpers/td-client.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The original Task Director client's wire protocol against the real
 * authority: fastify on 127.0.0.1, real WebSockets, a real SQLite file.
 * Each "fixed here" point of issue 5 has its own test, named after it.
 */

let dir: ReturnType<typeof tempDir>;
let server: TestServer | null;
let clients: TdClient[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-td-');
  server = null;
  clients = [];
});

afterEach(async () => {
  const violations = clients.flatMap((c) => c.violations.map((v) => `${c.clientId}: ${v}`));
  for (const c of clients) if (c.closeCode === null) await c.kill();
  await server?.close();
  dir.remove();
  // Nothing the original client would have choked on, in any test.
  expect(violations).toEqual([]);
});

async function start(over: Partial<ServerConfigInput> = {}, dbName = 'td.db'): Promise<TestServer> {
  server = await startServer({ dbPath: dir.file(dbName), ...over }, server ? { clock: server.clock } : {});
  return server;
}

async function connect(clientId: string, options: { token?: string } = {}): Promise<TdClient> {
  const c = await TdClient.connect(tdUrl(server!.httpUrl, clientId), clientId, options);
  clients.push(c);
  return c;
}

/** Connects and sends INIT. */
async function join(clientId: string, init: InitOptions): Promise<TdClient> {
  const c = await connect(clientId);
  c.init(init);
  return c;
}

function readDb(sql: string, dbName = 'td.db'): Record<string, unknown>[] {
  const db = new Database(dir.file(dbName), { readonly: true });
  try {
    return db.prepare(sql).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

/** Everything the scheduler persists about steps (a success is its step row), leases and peers. */
function stateRows(): unknown {
  return {
    steps: readDb('SELECT * FROM steps ORDER BY cohort_id, step_id'),
    leases: readDb('SELECT * FROM leases ORDER BY lease_id'),
    peers: readDb('SELECT * FROM peers ORDER BY cohort_id, peer_id'),
  };
}

/**
 * Waits until the authority has committed a row for `clientId` (for a client
 * that gets no frame in reply to INIT: the old protocol has no `wait`).
 * Yields to the event loop between checks; never sleeps.
 */
async function joined(clientId: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    await server!.settle();
    if (readDb(`SELECT 1 FROM peers WHERE peer_id = 'td:${clientId}' AND status = 'connected'`).length > 0) return;
  }
  throw new Error(`${clientId} never joined`);
}

function cohortOf(clientId: string): string {
  const rows = readDb(`SELECT cohort_id FROM peers WHERE peer_id = 'td:${clientId}' ORDER BY joined_at_ms DESC`);
  expect(rows.length).toBeGreaterThan(0);
  return String(rows[0]!.cohort_id);
}

describe('Task Director drop-in: basics', () => {
  it('happy path: a stacked client joins the group, the tasks are split, each is built once, both get SCHEMA_COMPLETE', async () => {
    await start();
    const a = await join('ci_job_a', { totalTasks: 4 });
    const first = await a.next(0);
    expect(first).toEqual({ message_type: 2, type: 'send.message', schema_id: 'build', task_id: '0' });
    const b = await join('ci_job_b', { totalTasks: 4, patchset: 'p2', additional: ['p1'] });
    const [ranA, ranB] = await Promise.all([runLikeOriginal(a), runLikeOriginal(b)]);
    expect([...ranA, ...ranB].sort()).toEqual(['0', '1', '2', '3']);
    expect(ranB.length).toBeGreaterThan(0);
    for (const c of [a, b]) expect(c.received.filter(isSchemaComplete)).toEqual([{ message_type: 4, schema_id: 'build' }]);
    await server!.settle();
    expect(cohortOf('ci_job_a')).toBe(cohortOf('ci_job_b'));
    expect(readDb('SELECT count(*) AS n FROM cohorts')).toEqual([{ n: 1 }]);
    expect(readDb('SELECT step_id, count(*) AS n FROM leases GROUP BY step_id HAVING n > 1')).toEqual([]);
    expect(readDb("SELECT count(*) AS n FROM steps WHERE status = 'succeeded'")).toEqual([{ n: 4 }]);
    expect(readDb("SELECT DISTINCT resumable, json_extract(registration_json, '$.pipelineType') AS type FROM peers")).toEqual([{ resumable: 0, type: 'dependent' }]);
  });

  it('grouping: most patchsets in common (>= 1); complex_patchset alone; cache id, base ref and task count separate; repos mapped order-free and prefixed', async () => {
    await start();
    const inits: [string, InitOptions][] = [
      ['a', { totalTasks: 4, patchset: 'p1' }],
      ['b', { totalTasks: 4, patchset: 'p2', additional: ['p1'] }],
      ['c', { totalTasks: 4, patchset: 'p9' }],
      ['d', { totalTasks: 4, patchset: 'p1', complexPatchset: true }],
      ['e', { totalTasks: 4, patchset: 'p1', cacheId: '2' }],
      ['f', { totalTasks: 4, repoState: { 'org/repo_1': { base_ref: 'release', patchset: 'p1' } } }],
      ['g', { totalTasks: 5, patchset: 'p1' }],
      ['m1', { totalTasks: 4, repoState: { 'org/x': { base_ref: 'main', patchset: 'px' }, 'org/y': { base_ref: 'dev', patchset: 'py' } } }],
      ['m2', { totalTasks: 4, repoState: { 'org/y': { base_ref: 'dev', patchset: 'py2', additional_patchsets: ['py'] }, 'org/x': { base_ref: 'main', patchset: 'px2' } } }],
      // The same shas as m1 but in the other repo each: nothing in common.
      ['m3', { totalTasks: 4, repoState: { 'org/x': { base_ref: 'main', patchset: 'py' }, 'org/y': { base_ref: 'dev', patchset: 'px' } } }],
    ];
    for (const [id, init] of inits) {
      const c = await join(id, init);
      await c.next(0); // every client here gets a task: no group has more than 4 tasks taken
    }
    await server!.settle();
    const group = Object.fromEntries(inits.map(([id]) => [id, cohortOf(id)]));
    expect(group.b).toBe(group.a);
    expect(group.m2).toBe(group.m1);
    const separate = ['a', 'c', 'd', 'e', 'f', 'g', 'm1', 'm3'].map((id) => group[id]);
    expect(new Set(separate).size).toBe(separate.length);
    expect(readDb(`SELECT isolated FROM cohorts WHERE cohort_id = '${group.d}'`)).toEqual([{ isolated: 1 }]);
    expect(readDb(`SELECT repo, base_ref, patchsets_json FROM cohorts WHERE cohort_id = '${group.m1}'`)).toEqual([
      { repo: '["org/x","org/y"]', base_ref: '["main","dev"]', patchsets_json: JSON.stringify(['org/x:px', 'org/x:px2', 'org/y:py', 'org/y:py2']) },
    ]);
  });

  it('a joiner whose repos are a subset of a group\'s (same base refs) joins it; a superset or another base ref does not', async () => {
    await start();
    const both = await join('both', { totalTasks: 4, repoState: { 'org/x': { base_ref: 'main', patchset: 'px' }, 'org/y': { base_ref: 'main', patchset: 'py' } } });
    await both.next(0);
    const subset = await join('subset', { totalTasks: 4, repoState: { 'org/x': { base_ref: 'main', patchset: 'px' } } });
    await subset.next(0);
    expect(cohortOf('subset')).toBe(cohortOf('both'));
    const otherRef = await join('other_ref', { totalTasks: 4, repoState: { 'org/x': { base_ref: 'release', patchset: 'px' } } });
    await otherRef.next(0);
    expect(cohortOf('other_ref')).not.toBe(cohortOf('both'));
    const superset = await join('superset', { totalTasks: 4, repoState: { 'org/x': { base_ref: 'main', patchset: 'px' }, 'org/z': { base_ref: 'main', patchset: 'pz' } } });
    await superset.next(0);
    expect(cohortOf('superset')).not.toBe(cohortOf('both'));
  });

  it('state survives a restart: done tasks stay done, the lost task is handed out first, the group completes', async () => {
    await start({}, 'restart.db');
    const a = await join('runner_1', { totalTasks: 3 });
    const t0 = await a.waitFor(isBuild);
    a.complete(t0.task_id);
    const t1 = await a.waitFor(isBuild, a.received.indexOf(t0) + 1);
    const cohort = await (async () => (await server!.settle(), readDb('SELECT cohort_id FROM cohorts', 'restart.db')[0]!.cohort_id))();
    await server!.close();
    expect(await a.closed()).toBe(1001);

    await start({}, 'restart.db');
    const again = await join('runner_1', { totalTasks: 3 });
    const first = await again.waitFor(isBuild);
    expect(first.task_id).toBe(t1.task_id);
    const ran = await runLikeOriginal(again);
    expect([t0.task_id, ...ran].sort()).toEqual(['0', '1', '2']);
    expect(readDb('SELECT DISTINCT cohort_id FROM steps', 'restart.db')).toEqual([{ cohort_id: cohort }]);
    expect(readDb("SELECT count(*) AS n FROM steps WHERE status = 'succeeded'", 'restart.db')).toEqual([{ n: 3 }]);
    expect(readDb(`SELECT attempt, outcome FROM leases WHERE step_id = '${t1.task_id}' ORDER BY attempt`, 'restart.db')).toEqual([
      { attempt: 1, outcome: 'lost' },
      { attempt: 2, outcome: 'succeeded' },
    ]);
  });

  it('URL: apiVersion must be 1, both parts letters/digits/_, trailing slash required', async () => {
    await start();
    await expect(TdClient.connect(tdUrl(server!.httpUrl, 'ok_1', '2'), 'x')).rejects.toThrow('HTTP 400');
    await expect(TdClient.connect(tdUrl(server!.httpUrl, 'not-ok'), 'x')).rejects.toThrow('HTTP 400');
    await expect(TdClient.connect(tdUrl(server!.httpUrl, 'ok_1', '1', false), 'x')).rejects.toThrow('HTTP 404');
    const ok = await join('ok_1', { totalTasks: 1 });
    expect(await ok.next(0)).toMatchObject({ message_type: 2, task_id: '0' });
  });

  it('with a peer token configured the old client needs the header (e.g. from a proxy): 401 without it', async () => {
    const token = 'td-test-token-0123456789';
    await start({ peerToken: token });
    await expect(TdClient.connect(tdUrl(server!.httpUrl, 'no_token'), 'no_token')).rejects.toThrow('HTTP 401');
    const c = await connect('with_token', { token });
    c.init({ totalTasks: 1 });
    expect(await c.next(0)).toMatchObject({ message_type: 2, task_id: '0' });
  });

  it('the same clientId connected twice: the second gets DUPLICATE_PEER and close 4409, the first keeps its task', async () => {
    await start();
    const first = await join('dup', { totalTasks: 1 });
    const task = await first.waitFor(isBuild);
    const second = await join('dup', { totalTasks: 1 });
    expect(await second.closed()).toBe(4409);
    expect(second.errors().map((e) => e.error.code)).toEqual(['DUPLICATE_PEER']);
    expect(second.received.filter(isBuild)).toEqual([]);
    first.complete(task.task_id);
    await first.waitFor(isSchemaComplete);
  });
});

describe('Task Director drop-in: what the original got wrong, fixed here', () => {
  it('1. a dropped client\'s task goes at once to an idle client that is waiting (no grace for clients that cannot resume)', async () => {
    await start({ leaseGraceSec: 600 }); // the grace of resumable v1 peers must not apply here
    const a = await join('holder', { totalTasks: 1 });
    const task = await a.waitFor(isBuild);
    const b = await join('waiter', { totalTasks: 1 });
    await joined('waiter');
    expect(b.received).toEqual([]);
    const before = server!.clock.now();
    await a.kill();
    const handed = await b.waitFor(isBuild);
    expect(handed).toEqual({ message_type: 2, type: 'send.message', schema_id: 'build', task_id: task.task_id });
    expect(server!.clock.now()).toBe(before);
    b.complete(handed.task_id);
    expect(await runLikeOriginal(b, { from: 1 })).toEqual([]);
    expect(b.received.filter(isSchemaComplete)).toHaveLength(1);
    expect(readDb("SELECT peer_id, attempt, outcome FROM leases ORDER BY attempt")).toEqual([
      { peer_id: 'td:holder', attempt: 1, outcome: 'lost' },
      { peer_id: 'td:waiter', attempt: 2, outcome: 'succeeded' },
    ]);
  });

  it('2. TASK_COMPLETE for a task the client does not hold, a repeat, or before INIT: an error for that connection only, nothing changes', async () => {
    await start();
    const early = await connect('early');
    early.send({ message_type: 3, schema_id: 'build', task_id: '0', task_success: true });
    expect((await early.waitFor(isError)).error).toMatchObject({ code: 'NOT_JOINED', retryable: false });

    const a = await join('a', { totalTasks: 2 });
    const taskA = await a.waitFor(isBuild);
    const b = await join('b', { totalTasks: 2 });
    const taskB = await b.waitFor(isBuild);
    await server!.settle();
    const before = stateRows();

    a.complete(taskB.task_id); // b holds it
    a.complete('7'); // not a task of this group
    a.send({ message_type: 3, schema_id: 'other', task_id: taskA.task_id, task_success: true }); // another schema
    await a.waitFor(() => a.errors().length === 3);
    expect(a.errors().map((e) => e.error.code)).toEqual(['UNKNOWN_STEP', 'UNKNOWN_STEP', 'UNKNOWN_STEP']);
    expect(a.errors()[0]).toMatchObject({ message_type: 5, schema_id: 'build', error: { retryable: false } });
    expect(a.errors()[0]).not.toHaveProperty('task_id'); // never mistaken for a real ABORT_TASK by a newer client
    await server!.settle();
    expect(stateRows()).toEqual(before);

    a.send({ message_type: 3, schema_id: 'build', task_id: taskA.task_id, task_success: true });
    await server!.settle();
    a.send({ message_type: 3, schema_id: 'build', task_id: taskA.task_id, task_success: true }); // the repeat
    await a.waitFor(() => a.errors().length === 4);
    expect(a.errors()[3]!.error.code).toBe('STALE_LEASE');
    await server!.settle();
    expect(readDb(`SELECT count(*) AS n FROM steps WHERE status = 'succeeded' AND step_id = '${taskA.task_id}'`)).toEqual([{ n: 1 }]);
    expect(readDb(`SELECT count(*) AS n FROM leases WHERE step_id = '${taskA.task_id}'`)).toEqual([{ n: 1 }]);

    b.complete(taskB.task_id);
    await Promise.all([a.waitFor(isSchemaComplete), b.waitFor(isSchemaComplete)]);
    expect(b.errors()).toEqual([]);
    expect(a.closeCode).toBeNull(); // errors never closed it
    expect(readDb("SELECT count(*) AS n FROM steps WHERE status = 'succeeded'")).toEqual([{ n: 2 }]);
  });

  it('3. a malformed frame, a missing field or an unknown message_type affects only that connection', async () => {
    await start();
    const a = await join('a', { totalTasks: 4 });
    await a.waitFor(isBuild);
    const b = await join('b', { totalTasks: 4 });
    const taskB = await b.waitFor(isBuild);
    const c = await join('c', { totalTasks: 2, patchset: 'other' }); // another group
    await c.waitFor(isBuild);
    await server!.settle();
    const before = stateRows();

    const bad: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['[1, 2]', /JSON object/],
      ['{"task_id": "1"}', /message_type: is required/],
      ['{"message_type": "3"}', /message_type: expected a number/],
      ['{"message_type": 42}', /unknown message_type 42/],
      ['{"message_type": 3, "schema_id": "build"}', /TASK_COMPLETE: task_id: is required/],
      [`{"message_type": 3, "schema_id": "build", "task_id": "${taskB.task_id}", "task_success": "yes"}`, /task_success: expected boolean/],
      ['{"message_type": 1, "repo_state": {}}', /INIT: /],
    ];
    for (const [text] of bad) b.sendRaw(text);
    b.sendRaw(Buffer.from([1, 2, 3]), { binary: true });
    await b.waitFor(() => b.errors().length === bad.length + 1);
    const problems = b.errors().map((e) => e.error);
    bad.forEach(([, pattern], i) => expect(problems[i]).toMatchObject({ code: 'BAD_MESSAGE', message: expect.stringMatching(pattern) }));
    expect(problems[bad.length]).toMatchObject({ code: 'BAD_MESSAGE', message: expect.stringMatching(/binary/) });
    await server!.settle();
    expect(stateRows()).toEqual(before);
    expect(a.errors()).toEqual([]);
    expect(c.errors()).toEqual([]);
    expect(b.closeCode).toBeNull();

    // Everyone, the sender of the bad frames included, goes on to the end.
    const [ranA, ranB, ranC] = await Promise.all([runLikeOriginal(a), runLikeOriginal(b), runLikeOriginal(c)]);
    expect([...ranA, ...ranB].sort()).toEqual(['0', '1', '2', '3']);
    expect(ranC.sort()).toEqual(['0', '1']);
    expect(readDb("SELECT count(*) AS n FROM steps WHERE status = 'succeeded'")).toEqual([{ n: 6 }]);
  });

  it('3b. repeated bad frames close that connection with 1008; its task goes to the waiting client, the rest carry on', async () => {
    await start({ maxStrikes: 2 });
    const noisy = await join('noisy', { totalTasks: 1 });
    const task = await noisy.waitFor(isBuild);
    const waiter = await join('waiter', { totalTasks: 1 });
    await joined('waiter');
    for (let i = 0; i < 3; i++) noisy.sendRaw('{"message_type": 99}');
    expect(await noisy.closed()).toBe(1008);
    expect(noisy.errors()).toHaveLength(2);
    const handed = await waiter.waitFor(isBuild);
    expect(handed.task_id).toBe(task.task_id);
    waiter.complete(handed.task_id);
    await waiter.waitFor(isSchemaComplete);
  });

  it('3c. an INIT that cannot be accepted gets an error and a close (the original would wait forever)', async () => {
    await start();
    const c = await connect('bad_init');
    c.send({ message_type: 1, repo_state: { 'org/repo_1': { base_ref: 'main', patchset: 'p1' } }, complex_patchset: false, cache_id: '1', schema_id: 'build', total_tasks: 0 });
    expect(await c.closed()).toBe(1008);
    expect(c.errors().map((e) => e.error)).toEqual([{ code: 'BAD_MESSAGE', message: expect.stringMatching(/total_tasks: .*at least 1/), retryable: false }]);
    expect(readDb('SELECT count(*) AS n FROM peers')).toEqual([{ n: 0 }]);
  });

  it('4. a client joining a group that already completed gets SCHEMA_COMPLETE at once', async () => {
    await start();
    const a = await join('first', { totalTasks: 2 });
    expect((await runLikeOriginal(a)).sort()).toEqual(['0', '1']);
    await server!.settle();
    const leases = readDb('SELECT * FROM leases ORDER BY lease_id');
    const late = await join('late', { totalTasks: 2, patchset: 'p2', additional: ['p1'] });
    const first = await late.next(0);
    expect(first).toEqual({ message_type: 4, schema_id: 'build' });
    await late.close();
    expect(late.received).toEqual([first]);
    expect(cohortOf('late')).toBe(cohortOf('first'));
    expect(readDb('SELECT * FROM leases ORDER BY lease_id')).toEqual(leases);
  });

  it('5. a failing task is retried on a different client before anything else', async () => {
    await start();
    const a = await join('a', { totalTasks: 4 });
    const t0 = await a.waitFor(isBuild);
    const b = await join('b', { totalTasks: 4 });
    const t1 = await b.waitFor(isBuild);
    expect([t0.task_id, t1.task_id]).toEqual(['0', '1']);

    a.complete('0', false);
    const nextA = await a.waitFor(isBuild, 1);
    expect(nextA.task_id).toBe('2'); // not its own failure back: b is there to take it
    b.complete('1');
    const nextB = await b.waitFor(isBuild, 1);
    expect(nextB.task_id).toBe('0'); // the retry, before task 3
    b.complete('0');
    a.complete('2');
    const [ranA, ranB] = await Promise.all([runLikeOriginal(a, { from: 2 }), runLikeOriginal(b, { from: 2 })]);
    expect([...ranA, ...ranB]).toEqual(['3']);
    expect(readDb("SELECT peer_id, attempt, outcome FROM leases WHERE step_id = '0' ORDER BY attempt")).toEqual([
      { peer_id: 'td:a', attempt: 1, outcome: 'failed' },
      { peer_id: 'td:b', attempt: 2, outcome: 'succeeded' },
    ]);
  });

  it('no backup copies for old clients: a straggler keeps its task and the waiting client is not given a copy', async () => {
    await start({ stragglerFactor: 2, stragglerMinSec: 30, defaultEstimateSec: 60 });
    const slow = await join('slow', { totalTasks: 1 });
    const task = await slow.waitFor(isBuild);
    const idle = await join('idle', { totalTasks: 1 });
    await joined('idle');
    await server!.advance(10 * 60_000);
    expect(idle.received).toEqual([]);
    slow.complete(task.task_id);
    await idle.waitFor(isSchemaComplete);
    expect(readDb('SELECT peer_id, backup, outcome FROM leases')).toEqual([{ peer_id: 'td:slow', backup: 0, outcome: 'succeeded' }]);
  });

  it('ABORT_TASK: a cancelled group aborts the running task; the aborted client\'s late report changes nothing', async () => {
    await start();
    const runner = await join('runner', { totalTasks: 2 });
    const task = await runner.waitFor(isBuild);
    await server!.settle();
    const cohortId = cohortOf('runner');
    expect(await server!.built.authority.submitNow({ kind: 'cancel', cohortId })).toEqual({ ok: true });
    expect(await runner.waitFor((f) => f.message_type === 5)).toEqual({ message_type: 5, schema_id: 'build', task_id: task.task_id });
    await runner.waitFor(isSchemaComplete);
    await server!.settle();
    const before = stateRows();
    runner.complete(task.task_id, false); // the aborted run, reported as the original reports it
    expect((await runner.waitFor(isError)).error.code).toBe('STALE_LEASE');
    await server!.settle();
    expect(stateRows()).toEqual(before);
  });

  it('5b. alone, a client gets its failed task back, and after two failures the task fails for the group and SCHEMA_COMPLETE still comes', async () => {
    await start();
    const solo = await join('solo', { totalTasks: 2 });
    const ran = await runLikeOriginal(solo, { fail: (id) => id === '0' });
    expect(ran).toEqual(['0', '0', '1']);
    expect(solo.received.filter(isSchemaComplete)).toEqual([{ message_type: 4, schema_id: 'build' }]);
    expect(readDb("SELECT step_id, status, failures FROM steps ORDER BY step_id")).toEqual([
      { step_id: '0', status: 'failed', failures: 2 },
      { step_id: '1', status: 'succeeded', failures: 0 },
    ]);
  });

  it('6. 200 clients x 1,000 zero-duration tasks: every task done exactly once, every client gets SCHEMA_COMPLETE', { timeout: 60_000 }, async () => {
    await start();
    const clientCount = 200;
    const totalTasks = 1_000;
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: clientCount }, (_, i) => connect(`client_${i}`)));
    const tConnected = performance.now();
    for (const c of all) c.init({ totalTasks });
    const ran = await Promise.all(all.map((c) => runLikeOriginal(c, { timeoutMs: 50_000 })));
    const tDone = performance.now();
    const tasks = ran.flat();
    expect(tasks).toHaveLength(totalTasks);
    expect(new Set(tasks).size).toBe(totalTasks);
    for (const c of all) expect(c.received.filter(isSchemaComplete)).toEqual([{ message_type: 4, schema_id: 'build' }]);
    await server!.settle();
    expect(readDb("SELECT count(*) AS n, count(DISTINCT step_id) AS steps FROM steps WHERE status = 'succeeded'")).toEqual([{ n: totalTasks, steps: totalTasks }]);
    expect(readDb("SELECT count(*) AS n FROM leases WHERE outcome = 'succeeded'")).toEqual([{ n: totalTasks }]);
    expect(readDb('SELECT count(*) AS n FROM leases')).toEqual([{ n: totalTasks }]);
    expect(readDb("SELECT count(*) AS n FROM steps WHERE status != 'succeeded'")).toEqual([{ n: 0 }]);
    expect(readDb('SELECT count(DISTINCT cohort_id) AS n FROM peers')).toEqual([{ n: 1 }]);
    console.log(`[td-scale] connect ${Math.round(tConnected - t0)} ms, run ${Math.round(tDone - tConnected)} ms; busiest client ran ${Math.max(...ran.map((r) => r.length))} tasks`);
  });
});
