import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { dagSchema } from '../helpers/schemas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/** /metrics after a run on a fake clock: standard process names, histograms and counters derived from commits. */

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
const peers: RawPeer[] = [];

beforeEach(async () => {
  dir = tempDir('taskshard-metrics-');
  server = await startServer({ dbPath: dir.file('m.db') });
});
afterEach(async () => {
  for (const p of peers.splice(0)) if (p.closeCode === null) await p.kill();
  await server.close();
  dir.remove();
});

async function joined(peerId: string): Promise<RawPeer> {
  const p = await RawPeer.connect(server.wsUrl);
  peers.push(p);
  p.send(helloFor(peerId, dagSchema({ x: [], y: ['x'] })));
  await p.waitType('welcome');
  return p;
}

const metric = (text: string, name: string): number => {
  const m = new RegExp(`^${name.replace(/[{}"=.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in\n${text}`);
  return Number(m[1]);
};

describe('/metrics', () => {
  it('step durations, peer waits and time to universe come from what was committed', async () => {
    const p1 = await joined('p1');
    const x = await p1.waitType('assign');
    const p2 = await joined('p2'); // nothing assignable for p2 until x is done
    await p2.waitType('wait');
    server.clock.advance(1500);
    p1.send({ type: 'step.finished', leaseId: x.leaseId, stepId: 'x', ok: true, exitCode: 0, durationMs: 1500 });
    const [holder, y] = await Promise.race([p1, p2].map(async (p) => [p, await p.waitFor((m) => m.type === 'assign' && m.stepId === 'y')] as const));
    if (y.type !== 'assign') throw new Error('expected assign');
    server.clock.advance(250);
    holder.send({ type: 'step.finished', leaseId: y.leaseId, stepId: 'y', ok: true, exitCode: 0, durationMs: 250 });
    await Promise.all([p1.waitType('complete'), p2.waitType('complete')]);
    await server.settle();

    const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metric(text, 'taskshard_step_duration_seconds_count{outcome="succeeded"}')).toBe(2);
    expect(metric(text, 'taskshard_step_duration_seconds_sum{outcome="succeeded"}')).toBeCloseTo(1.75, 6);
    expect(metric(text, 'taskshard_step_duration_seconds_bucket{le="1",outcome="succeeded"}')).toBe(1);
    // p1 waited 0 for x; whoever did not get y waited until completion, the other 0 or 1.5 s: 1.75 s in all, 4 waits.
    expect(metric(text, 'taskshard_peer_wait_seconds_count')).toBe(4);
    expect(metric(text, 'taskshard_peer_wait_seconds_sum')).toBeCloseTo(1.75, 6);
    expect(metric(text, 'taskshard_time_to_universe_seconds_count')).toBe(2);
    expect(metric(text, 'taskshard_time_to_universe_seconds_sum')).toBeCloseTo(3.5, 6);
    expect(metric(text, 'taskshard_steps_total{outcome="built"}')).toBe(2);
    expect(metric(text, 'taskshard_saved_seconds_total{unit="build"}')).toBeCloseTo(1.75, 6);
    expect(text).toMatch(/^taskshard_build_info\{version="[^"]+",node_version="v\d+\.\d+\.\d+"\} 1$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total \S+$/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \S+$/m);
    // The longest stall since the last scrape, split into the main thread's CPU time and its wait for a CPU (Linux).
    for (const part of process.platform === 'linux' ? ['stall', 'running', 'waiting'] : ['stall']) {
      expect(metric(text, `taskshard_event_loop_longest_stall_seconds{part="${part}"}`)).toBeGreaterThanOrEqual(0);
    }
    expect(text).not.toContain('taskshard_process_');
    expect(server.built.metrics.fromWrites.trackedCohorts).toBe(0); // forgotten once resolved
  });
});

describe('deploy/grafana/taskshard-dashboard.json', () => {
  it('uses only metrics the authority exports', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana/taskshard-dashboard.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:taskshard|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''))));
    const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    expect(used.size).toBeGreaterThan(12);
  });
});
