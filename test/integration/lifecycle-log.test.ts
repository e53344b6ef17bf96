import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AuthorityApp } from '../../server/app.js';
import { parseServerConfig } from '../../server/config.js';
import { openStore } from '../../server/store/open-store.js';
import { prettyLine } from '../../server/http/log-format.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';
import { normalizeRepo } from '../../shared/repo-url.js';

/** The authority's log tells each lifecycle event once, with its fields; failures are warnings. */

let dir: ReturnType<typeof tempDir>;
let built: AuthorityApp;
let wsUrl: string;
let lines: Record<string, any>[];
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-log-');
  lines = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  const config = parseServerConfig({ host: '127.0.0.1', port: 0, dbPath: dir.file('log.db') });
  built = await buildApp(config, { store: await openStore(config), clock: new FakeClock(), logger: { level: 'info', stream } });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  wsUrl = `ws://127.0.0.1:${(built.app.server.address() as AddressInfo).port}/v1/peer`;
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await built.close();
  dir.remove();
});

describe('lifecycle log', () => {
  it('one line per event with cohort, repo, peer and step; failures as warnings', async () => {
    const p = await RawPeer.connect(wsUrl);
    peers.push(p);
    p.send(helloFor('p1', dagSchema({ x: [], y: ['x'] })));
    const welcome = await p.waitType('welcome');
    const x = await p.waitType('assign');
    p.send({ type: 'step.finished', leaseId: x.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: 5 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const y = await p.waitFor((m) => m.type === 'assign' && m.stepId === 'y' && m.attempt === attempt);
      if (y.type !== 'assign') throw new Error('expected assign');
      p.send({ type: 'step.finished', leaseId: y.leaseId, stepId: 'y', ok: false, exitCode: 4, durationMs: 5, logTail: 'broken' });
    }
    await p.waitType('complete');
    await p.close();
    const story = () => lines.filter((l) => l.cohortId === welcome.cohort.id).map((l) => [l.level === 40 ? 'warn' : 'info', l.msg, l.peerId ?? null, l.stepId ?? null]);
    for (let i = 0; i < 100 && !story().some((s) => s[1] === 'peer left'); i++) await new Promise((r) => setImmediate(r));
    expect(story()).toEqual([
      ['info', 'cohort created', null, null],
      ['info', 'peer joined', 'p1', null],
      ['info', 'step assigned', 'p1', 'x'],
      ['info', 'step succeeded', 'p1', 'x'],
      ['info', 'step assigned', 'p1', 'y'],
      ['warn', 'step attempt failed', 'p1', 'y'],
      ['info', 'step retrying', null, 'y'],
      ['info', 'step assigned', 'p1', 'y'],
      ['warn', 'step attempt failed', 'p1', 'y'],
      ['warn', 'step failed', 'p1', 'y'],
      ['warn', 'cohort complete', null, null],
      ['info', 'peer left', 'p1', null],
    ]);
    const ours = lines.filter((l) => l.cohortId === welcome.cohort.id);
    // The authority stores (and logs) the repo normalized (shared/repo-url.ts).
    expect(new Set(ours.map((l) => l.repo))).toEqual(new Set([normalizeRepo(helloFor('p1', dagSchema({ x: [] })).repo)]));
    expect(ours.find((l) => l.msg === 'cohort complete')).toMatchObject({ outcome: 'failed' });
    expect(ours.find((l) => l.msg === 'step assigned' && l.stepId === 'y')).toMatchObject({ attempt: 1, leaseId: expect.any(String) });
  });
});

describe('refused peers', () => {
  it('a second connection for a connected peer id is refused and logged as "peer refused" with the code', async () => {
    const p = await RawPeer.connect(wsUrl);
    peers.push(p);
    p.send(helloFor('twin', dagSchema({ x: [] })));
    await p.waitType('welcome');
    const q = await RawPeer.connect(wsUrl);
    peers.push(q);
    q.send(helloFor('twin', dagSchema({ x: [] })));
    expect(await q.waitType('error')).toMatchObject({ code: 'DUPLICATE_PEER' });
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'peer refused'); i++) await new Promise((r) => setImmediate(r));
    expect(lines.filter((l) => l.msg === 'peer refused')).toEqual([expect.objectContaining({ level: 40, code: 'DUPLICATE_PEER', refusal: 'duplicate-peer', peerId: 'twin', heldBy: 'connection' })]);
  });
});

describe('prettyLine', () => {
  it('renders a pino line as time, level, message and fields', () => {
    const json = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), pid: 1, hostname: 'h', cohortId: 'c_1', detail: 'exit 4, attempt 1', attempt: 2, msg: 'step attempt failed' });
    expect(prettyLine(json)).toBe('03:04:05.678 WARN  step attempt failed  cohortId=c_1 detail="exit 4, attempt 1" attempt=2');
    expect(prettyLine('not json')).toBe('not json');
    const withErr = prettyLine(JSON.stringify({ level: 50, time: 0, msg: 'boom', err: { type: 'Error', message: 'x', stack: 'Error: x\n    at f' } }));
    expect(withErr).toBe('00:00:00.000 ERROR boom\nError: x\n    at f');
  });
});
