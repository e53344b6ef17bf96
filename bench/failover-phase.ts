import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import WebSocket from 'ws';
import type { Hello } from '../shared/protocol.js';
import { schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';
import { freePort, spawnNode, stopChild, within } from './bench-processes.js';

/**
 * PostgreSQL figures for `npm run bench -- --store postgres://...`: a scratch
 * database per run, and failover time (kill -9 of the active authority to
 * the first grant by the one that takes over) over several kills.
 */

/** Creates an empty database next to the one `url` names (needs CREATEDB); `drop()` removes it. */
export async function scratchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `taskshard_bench_${process.pid}_${Date.now()}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.toString(),
    drop: async () => {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

export interface FailoverOptions {
  readonly repoRoot: string;
  readonly db: string;
  readonly kills: number;
  readonly leaderRenewSec: number;
  readonly leaderTtlSec: number;
  readonly deadlineMs: number;
  readonly log: (line: string) => void;
}

export interface FailoverFigures {
  /** Kill to first grant by the new active authority, per kill, in ms. */
  readonly samplesMs: number[];
  readonly medianMs: number;
  readonly maxMs: number;
}

const schema: SchemaDef = { id: 'failover', universe: '//...', steps: [{ id: 's1', target: '//s1/...', needs: [] }] };
const wireSchema = { id: schema.id, digest: schemaDigest(schema), universe: schema.universe, steps: [{ id: 's1', target: '//s1/...', needs: [] }] };

/** One hello for a fresh cohort; resolves true on `assign`, false on anything else (refused upgrade, close, error). */
function tryGrant(port: number, n: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/peer`);
    const done = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.terminate();
      resolve(ok);
    };
    socket.on('error', () => done(false));
    socket.on('unexpected-response', () => done(false));
    socket.on('close', () => done(false));
    socket.on('open', () => {
      const hello: Hello = {
        type: 'hello',
        protocol: 1,
        peerId: `failover-${n}`,
        repo: 'https://example.com/bench/failover.git',
        baseRef: 'main',
        patchsets: [`refs/changes/${process.pid}/${n}`],
        pipeline: { name: 'failover', type: 'independent' },
        isolated: true,
        cacheId: 'bench-cache',
        schema: wireSchema,
      };
      socket.send(JSON.stringify(hello));
    });
    socket.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string };
      if (m.type === 'assign') done(true);
    });
  });
}

export async function failoverPhase(o: FailoverOptions): Promise<FailoverFigures> {
  const ports = [await freePort(), await freePort()];
  const procs: (ChildProcess | null)[] = [null, null];
  let attempt = 0;
  const start = (i: number): ChildProcess => {
    const args = [join(o.repoRoot, 'dist/cli/main.js'), 'server', '--port', String(ports[i]), '--db', o.db, '--log-level', 'warn'];
    args.push('--leader-renew', String(o.leaderRenewSec), '--leader-ttl', String(o.leaderTtlSec), '--authority-id', `bench-${i}`);
    return spawnNode(args, { nofile: 1024, cwd: o.repoRoot });
  };
  const status = async (i: number, path: string): Promise<number> => {
    try {
      return (await fetch(`http://127.0.0.1:${ports[i]}${path}`)).status;
    } catch {
      return 0;
    }
  };
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    await within(
      (async () => {
        while (!(await check())) await new Promise((r) => setTimeout(r, 20));
      })(),
      Math.max(1, o.deadlineMs - performance.now()),
      what,
    );
  };
  const samplesMs: number[] = [];
  try {
    procs[0] = start(0);
    await until('the first authority to become active', async () => (await status(0, '/readyz')) === 200);
    procs[1] = start(1);
    await until('the second authority to stand by', async () => (await status(1, '/livez')) === 200);
    let active = 0;
    for (let k = 1; k <= o.kills; k++) {
      const standby = 1 - active;
      const killedAt = performance.now();
      procs[active]!.kill('SIGKILL');
      await until(`a grant by the authority taking over (kill ${k})`, () => tryGrant(ports[standby]!, ++attempt));
      const ms = Math.round(performance.now() - killedAt);
      samplesMs.push(ms);
      o.log(`failover ${k}/${o.kills}: first grant by the new authority ${ms} ms after kill -9`);
      await stopChild(procs[active]!, 'SIGKILL');
      procs[active] = start(active);
      await until('the restarted authority to stand by', async () => (await status(active, '/livez')) === 200);
      active = standby;
    }
  } finally {
    for (const p of procs) if (p) await stopChild(p, 'SIGTERM');
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const medianMs = sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
  return { samplesMs, medianMs, maxMs: sorted[sorted.length - 1] ?? 0 };
}
