import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp, type AuthorityApp } from '../../server/app.js';
import { parseServerConfig } from '../../server/config.js';
import { AnchoredClock, type TimeSource } from '../../server/core/clock.js';
import { openStore } from '../../server/store/open-store.js';
import type { Assign } from '../../shared/protocol.js';
import { queryDb } from '../helpers/db-dump.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { counterIds } from '../helpers/core-harness.js';
import { dagSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Issue 11, item 4: in-process deadlines follow the monotonic clock. A fake
 * wall clock and a fake monotonic clock move apart (the wall steps by hours
 * either way); no grace period, lease age, straggler backup or rate limit
 * moves with the wall, and stored times stay on the authority's axis.
 */
class FakeTime implements TimeSource {
  wall = 1_700_000_000_000;
  mono = 5_000;
  wallMs(): number {
    return this.wall;
  }
  monotonicMs(): number {
    return this.mono;
  }
  /** Real time passes: both clocks move. */
  pass(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
  /** The wall clock is stepped (NTP, an operator): only the wall moves. */
  stepWall(ms: number): void {
    this.wall += ms;
  }
}

const hour = 3600_000;
let dir: ReturnType<typeof tempDir>;
let built: AuthorityApp | null;
const peers: RawPeer[] = [];

beforeEach(() => {
  dir = tempDir('taskshard-mono-');
  built = null;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await built?.close();
  dir.remove();
});

async function start(time: FakeTime, extra: Record<string, unknown> = {}): Promise<{ app: AuthorityApp; wsUrl: string; tick: () => Promise<void> }> {
  const config = parseServerConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', dbPath: dir.file('t.db'), leaseGraceSec: 60, ...extra });
  const app = await buildApp(config, { store: await openStore(config), clock: new AnchoredClock(time), ids: counterIds(), logger: false });
  built = app;
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.app.server.address() as AddressInfo;
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
  return {
    app,
    wsUrl: `ws://127.0.0.1:${port}/v1/peer`,
    tick: async () => {
      app.authority.submit({ kind: 'tick' });
      await settle();
      await app.authority.settled();
      await settle();
    },
  };
}

async function join(wsUrl: string, peerId: string, schema = dagSchema({ slow: [] }, { slow: 600 })): Promise<RawPeer> {
  const p = await RawPeer.connect(wsUrl);
  peers.push(p);
  p.send(helloFor(peerId, schema));
  await p.waitFor((m) => m.type === 'welcome');
  return p;
}

describe('monotonic time: a wall-clock step of hours moves no in-process deadline', () => {
  it('the anchored clock follows the monotonic clock only, in integer milliseconds', () => {
    const time = new FakeTime();
    const clock = new AnchoredClock(time);
    expect(clock.now()).toBe(time.wall);
    time.stepWall(+3 * hour);
    expect(clock.now()).toBe(1_700_000_000_000);
    expect(clock.wallOffsetMs()).toBe(3 * hour);
    time.stepWall(-6 * hour);
    time.mono += 1234.7;
    expect(clock.now()).toBe(1_700_000_001_234);
    expect(clock.wallOffsetMs()).toBe(-3 * hour - 1234);
  });

  it('grace: +3 h and -3 h wall steps neither end it nor stretch it; it ends 60 s of monotonic time after the drop', async () => {
    const time = new FakeTime();
    const s = await start(time);
    const p = await join(s.wsUrl, 'p1');
    const lease = (await p.waitFor((m) => m.type === 'assign')) as Assign;
    await p.kill();
    // The server sees the close on its own turn of the event loop.
    await vi.waitFor(() => expect(s.app.authority.dump().peers.find((r) => r.peerId === 'p1')).toMatchObject({ status: 'disconnected', graceEndsAtMs: 1_700_000_000_000 + 60_000 }));

    time.stepWall(+3 * hour);
    await s.tick();
    expect(s.app.authority.dump().peers.find((r) => r.peerId === 'p1')!.status).toBe('disconnected');
    time.stepWall(-6 * hour);
    time.pass(59_999);
    await s.tick();
    expect(s.app.authority.dump().peers.find((r) => r.peerId === 'p1')!.status).toBe('disconnected');
    time.pass(1);
    await s.tick();
    expect(s.app.authority.dump().peers.find((r) => r.peerId === 'p1')!.status).toBe('gone');
    // What was stored is on the authority's axis: 60 s after the grant, whatever the wall said.
    const row = queryDb(dir.file('t.db'), 'SELECT ended_at_ms, end_json FROM leases WHERE lease_id = ?', lease.leaseId)[0] as { ended_at_ms: number; end_json: string };
    expect(row).toEqual({ ended_at_ms: 1_700_000_000_000 + 60_000, end_json: JSON.stringify({ kind: 'lost', why: 'grace-expired' }) });
  });

  it('lease age and straggler backups: a -3 h wall step does not postpone them, a +3 h step does not bring them forward', async () => {
    const time = new FakeTime();
    const s = await start(time, { stragglerFactor: 2, stragglerMinSec: 30, maxLeaseAgeSec: 1800 });
    const holder = await join(s.wsUrl, 'p1');
    const first = (await holder.waitFor((m) => m.type === 'assign')) as Assign;
    const waiter = await join(s.wsUrl, 'p2');
    await waiter.waitFor((m) => m.type === 'wait');

    time.stepWall(+3 * hour); // would pass both the 20 min backup and the 30 min age on the wall
    await s.tick();
    expect(waiter.received.filter((m) => m.type === 'assign')).toEqual([]);
    expect(holder.received.filter((m) => m.type === 'abort')).toEqual([]);

    time.stepWall(-6 * hour); // would put both 3 h further away on the wall
    time.pass(20 * 60_000); // 2 x the 600 s estimate of monotonic time
    await s.tick();
    const backup = (await waiter.waitFor((m) => m.type === 'assign')) as Assign;
    expect(backup).toMatchObject({ stepId: 'slow', backup: true, attempt: 2 });

    time.pass(10 * 60_000); // the original reaches its 30 min max age
    await s.tick();
    expect(await holder.waitFor((m) => m.type === 'abort')).toEqual({ type: 'abort', stepId: 'slow', leaseId: first.leaseId, reason: 'lease-lost' });
  });
});
