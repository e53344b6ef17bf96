import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Trends and stats against a real authority on a fake clock: a settled run is reduced once and
 * cached, a finished day is kept whole, a commit to a cohort drops what was cached for it, and
 * /api/v1/stats reports time saved in both units.
 */

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-trends-');
  server = await startServer({ dbPath: dir.file('t.db') });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

const get = async (path: string): Promise<any> => (await fetch(`${server.httpUrl}${path}`)).json();

/** One peer builds the one step in `buildMs`, is told complete, says bye and leaves. */
async function run(peerId: string, buildMs: number, leave = true): Promise<RawPeer> {
  const p = await RawPeer.connect(server.wsUrl);
  peers.push(p);
  p.send(helloFor(peerId, dagSchema({ x: [] })));
  const a = await p.waitType('assign');
  server.clock.advance(buildMs);
  p.send({ type: 'step.finished', leaseId: a.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: buildMs });
  await p.waitType('complete');
  if (leave) {
    p.send({ type: 'bye', reason: 'done' });
    await p.close();
  }
  await server.settle();
  return p;
}

describe('GET /api/v1/trends', () => {
  it('builds a settled run once, keeps a finished day whole, and builds again only what a commit touched', async () => {
    await run('p1', 2000);
    const first = await get('/api/v1/trends?days=2');
    expect(first).toMatchObject({ days: 2, runs: 1, truncated: false, rows: [{ schemaId: 'dag', runs: 1, stepsBuilt: 1, runnerSec: 2 }] });
    expect(server.built.trends.lastBuilt).toBe(1);
    await get('/api/v1/trends?days=2');
    expect(server.built.trends.lastBuilt).toBe(0); // settled: its figures are cached

    // A run still going is built on every request; the settled one is not.
    const open = await run('p2', 1000, false);
    await get('/api/v1/trends?days=2');
    expect(server.built.trends.lastBuilt).toBe(1);
    open.send({ type: 'bye', reason: 'done' });
    await open.close();
    await server.settle();
    await get('/api/v1/trends?days=2');
    expect(server.built.trends.lastBuilt).toBe(1); // the bye was a commit to its cohort
    await get('/api/v1/trends?days=2');
    expect(server.built.trends.lastBuilt).toBe(0);

    // A day later, yesterday is kept whole: a request builds nothing for it.
    server.clock.advance(86_400_000);
    const nextDay = await get('/api/v1/trends?days=2');
    expect(nextDay.runs).toBe(2);
    expect(server.built.trends.lastBuilt).toBe(0);
    await run('p3', 500);
    await get('/api/v1/trends?days=2');
    expect(server.built.trends.lastBuilt).toBe(1); // only today's new run
    const cohorts = (await get('/api/v1/cohorts')).cohorts as { id: string }[];
    server.built.trends.invalidate([cohorts[cohorts.length - 1]!.id]);
    const after = await get('/api/v1/trends?days=2');
    expect(server.built.trends.lastBuilt).toBe(1); // one run of the cached day, not the whole day
    expect(after.runs).toBe(3);
    expect((await get('/api/v1/trends?days=1')).runs).toBe(1);
  });

  it('/api/v1/stats reports build time and runner time, labelled', async () => {
    await run('p1', 2000);
    const stats = await get('/api/v1/stats');
    expect(stats).toMatchObject({ cohorts: { complete: 1 }, window: { days: 14, runs: 1, truncated: false }, buildTime: { savedSec: 0 }, runnerTime: { usedSec: 2 } });
    expect(typeof stats.runnerTime.savedSec).toBe('number');
    expect(stats.secondsSaved).toBe(0);
    const bad = await fetch(`${server.httpUrl}/api/v1/stats?days=0`);
    expect(bad.status).toBe(400);
  });
});
