import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCliAsync } from '../helpers/cli.js';
import { queryDb } from '../helpers/db-dump.js';
import { killAll, startAuthority, type Authority } from '../helpers/peer-e2e.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * One writer per SQLite file (issue 11, item 7), with real processes: a
 * second authority on a file a running one holds refuses to start (exit 2,
 * naming the file and the holder); a file deleted or replaced under a running
 * authority stops it (exit 1, a fatal line) before it acknowledges anything
 * into the unlinked file; the db commands run next to it.
 */
let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-one-writer-');
});
afterEach(async () => {
  await killAll();
  dir.remove();
});

const output = (a: Authority): string => a.proc.stdout + a.proc.stderr;

describe('one writer per SQLite file', () => {
  it('a second authority on a held file refuses to start, naming the file and the holder; after the first stops, it starts', async () => {
    const db = dir.file('held.db');
    const first = await startAuthority({ db });
    const health = (await (await fetch(`${first.httpUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', store: { kind: 'sqlite', status: 'ok', location: db } });

    const second = await runCliAsync(['server', '--port', '0', '--db', db], { env: { ...process.env, TASKSHARD_TOKEN: '' } });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`database ${db} is in use by another writer (authority, pid ${first.proc.child.pid} on `);

    // Reading next to it works; pruning (a writer) is refused the same way.
    const stats = await runCliAsync(['db', 'stats', '--db', db, '--json']);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ writer: { pid: first.proc.child.pid, role: 'authority' }, rows: { cohorts: 0 }, autoVacuum: 'incremental' });
    // Every table of history is counted (no bookkeeping: the migration list, the writer lock's row).
    expect(Object.keys(JSON.parse(stats.stdout).rows as object)).toEqual(['cohorts', 'cohort_schemas', 'steps', 'leases', 'peers', 'events', 'memos', 'durations', 'cache_evidence', 'step_successes']);
    const prune = await runCliAsync(['db', 'prune', '--db', db]);
    expect(prune.code).toBe(2);
    expect(prune.stderr).toContain(`pid ${first.proc.child.pid}`);

    first.proc.kill('SIGTERM');
    expect(await first.proc.exit()).toBe(0);
    const again = await startAuthority({ db });
    expect((await fetch(`${again.httpUrl}/healthz`)).status).toBe(200);
  });

  it('backs up a live database online; the copy opens and holds what was committed', async () => {
    const db = dir.file('live.db');
    const auth = await startAuthority({ db });
    const peer = await RawPeer.connect(`${auth.wsUrl}/v1/peer`);
    peer.send(helloFor('p', flatSchema(2)));
    const assign = await peer.waitType('assign');
    peer.send({ type: 'step.finished', leaseId: assign.leaseId, stepId: assign.stepId, ok: true, exitCode: 0, durationMs: 4 });
    await peer.waitType('step.update');
    const copy = dir.file('copy.db');
    const backup = await runCliAsync(['db', 'backup', copy, '--db', db]);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(/^backed up .* to .*copy\.db: \d+ pages, \d+ bytes, integrity ok\n$/);
    expect(queryDb(copy, "SELECT step_id, built_by AS peer_id FROM steps WHERE status = 'succeeded'")).toEqual([{ step_id: assign.stepId, peer_id: 'p' }]);
    const refused = await runCliAsync(['db', 'backup', copy, '--db', db]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${copy} exists`);
    peer.close();
  });

  it.each(['deleted', 'replaced'] as const)('stops with exit 1 and a fatal line when its file is %s, and acknowledges nothing after', async (how) => {
    const db = dir.file(`${how}.db`);
    const auth = await startAuthority({ db });
    const peer = await RawPeer.connect(`${auth.wsUrl}/v1/peer`);
    peer.send(helloFor('p', flatSchema(2)));
    const assign = await peer.waitType('assign');
    if (how === 'deleted') {
      rmSync(db);
    } else {
      writeFileSync(dir.file('other.db'), '');
      renameSync(dir.file('other.db'), db);
    }
    // Before the watch notices (it checks every second), a completion must not be acknowledged either.
    peer.send({ type: 'step.finished', leaseId: assign.leaseId, stepId: assign.stepId, ok: true, exitCode: 0, durationMs: 4 });
    expect(await auth.proc.exit(10_000)).toBe(1);
    expect(output(auth)).toMatch(new RegExp(`"level":60[^\\n]*database file ${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was ${how}`));
    expect(peer.received.filter((m) => m.type === 'step.update' || m.type === 'complete')).toEqual([]);
  });
});
