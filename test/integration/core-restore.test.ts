import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: ReturnType<typeof tempDir>;
let server: TestServer | null;
beforeEach(() => {
  dir = tempDir('taskshard-restore-');
  server = null;
});
afterEach(async () => {
  await server?.close();
  dir.remove();
});

describe('restoring state after a restart', () => {
  it('counts what the restore itself resolves: a step failed while restoring reaches the metrics', async () => {
    // A poison step lost its peer twice; its third lease's holder is not coming back.
    const h = new CoreHarness(dagSchema({ poison: [] }), { maxLostLeases: 3 });
    for (const p of ['p1', 'p2']) {
      h.hello(p);
      h.disconnect(p);
      h.advance(60_000);
    }
    h.hello('p3');
    expect(h.lastAssign('p3')).toMatchObject({ stepId: 'poison', attempt: 3 });
    const store = new SqliteStore(dir.file('r.db'));
    store.scheduler.apply(h.writes);
    store.close();
    const db = new Database(dir.file('r.db'));
    db.prepare("UPDATE peers SET status = 'left' WHERE peer_id = 'p3'").run();
    db.close();

    server = await startServer({ dbPath: dir.file('r.db'), maxLostLeases: 3 });
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^taskshard_steps_failed_total 1$/m);
    expect(server.built.authority.dump().steps).toEqual([
      expect.objectContaining({ stepId: 'poison', status: 'failed', lostLeases: 3, failCause: { kind: 'lost-too-often', lostLeases: 3, last: 'restart' } }),
    ]);
  });
});
