import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startAuthority } from '../helpers/peer-e2e.js';
import { digestHelloFor, helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The digest-first hello after a restart, with real processes (the authority's index of schemas
 * is per process, so only a new process shows it): the schemas of the cohorts an authority
 * restores are known to digest-first hellos at once, so a fleet reconnecting after a restart or a
 * failover is not asked for each schema again; a schema it never held still is.
 */
let dir: ReturnType<typeof tempDir> | null = null;

afterEach(async () => {
  await killAll();
  dir?.remove();
  dir = null;
});

describe('digest-first hello after a restart', () => {
  it("names a restored cohort's schema by digest without UNKNOWN_SCHEMA; an unknown schema is still asked for", async () => {
    dir = tempDir('taskshard-restart-digest-');
    const db = dir.file('r.db');
    const port = await freePort();
    let auth = await startAuthority({ db, port });
    const schema = flatSchema(3, 'restart-digest');
    const first = await RawPeer.connect(`${auth.wsUrl}/v1/peer`);
    first.send(helloFor('a', schema));
    const joined = await first.waitType('welcome');
    await first.waitType('assign');
    await first.close();

    auth.proc.kill('SIGTERM');
    await auth.proc.exit();
    auth = await startAuthority({ db, port });
    const second = await RawPeer.connect(`${auth.wsUrl}/v1/peer`);
    second.send(digestHelloFor('b', schema));
    const welcome = await second.waitType('welcome');
    expect(welcome.cohort.id).toBe(joined.cohort.id);
    expect(second.received.some((m) => m.type === 'error')).toBe(false);

    const third = await RawPeer.connect(`${auth.wsUrl}/v1/peer`);
    third.send(digestHelloFor('c', flatSchema(2, 'restart-digest-never-held')));
    expect(await third.waitType('error')).toMatchObject({ code: 'UNKNOWN_SCHEMA' });
    await second.close();
    await third.close();
  }, 60_000);
});
