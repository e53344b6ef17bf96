import { performance } from 'node:perf_hooks';
import type { Hello, WireSchema } from '../shared/protocol.js';
import { helloSchemaDigest, schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';
import { generatorModes, type ChildMessage, type GeneratorConfig, type GeneratorResult, type ParentMessage } from './bench-ipc.js';
import { openLoadSocket, type LoadSocket } from './load-ws-client.js';

/**
 * A load-generator process (forked by bench/authority-bench.ts, never in the
 * server's process): opens its share of the connections, waits for `go`, runs
 * its closed loop and reports counts and latency samples; after `close` it
 * waits for the next pass's `config` (a process kept between passes has its
 * JavaScript compiled and optimised, as the server's is) or for `exit`. Connections use
 * the client `cfg.client` names (load-ws-client.ts: the lean one by default,
 * `ws` on request), the same for every server. Frames from the
 * server are JSON-parsed only (the server's validation is what is measured,
 * not the generator's). v1 peers say hello as the taskshard peer does:
 * digest-first, the full hello when the authority answers `UNKNOWN_SCHEMA`;
 * before `go`, one warm-up peer has the authority check the schema (see
 * {@link warmUp}), so the run measures the hellos of a fleet whose schema the
 * authority knows.
 */

const now = (): number => performance.timeOrigin + performance.now();

function send(message: ChildMessage): void {
  process.send!(message);
}

/** A flat schema of `steps` independent steps, as every benchmark peer sends it. */
export function benchSchema(steps: number): SchemaDef {
  return { id: 'bench', universe: '//bench/...', steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i + 1}`, target: `//bench/s${i + 1}/...`, needs: [] })) };
}

function wire(schema: SchemaDef): WireSchema {
  return { id: schema.id, digest: schemaDigest(schema), universe: schema.universe, steps: schema.steps.map((s) => ({ id: s.id, target: s.target, needs: [] })) };
}

/** The fields of a benchmark peer's hello but the schema. */
function helloFields(peerId: string, patchset: string, isolated: boolean): Omit<Hello, 'schema' | 'schemaDigest'> {
  return {
    type: 'hello',
    protocol: 1,
    peerId,
    repo: 'https://example.com/bench/mono.git',
    baseRef: 'main',
    patchsets: [patchset],
    pipeline: { name: 'check', type: 'independent' },
    isolated,
    cacheId: 'bench-cache',
    // As the taskshard peer does: other steps' successes batched on its next assign/wait/complete.
    coalescedUpdates: true,
    // And only the successes it needs (while it waits, and its own), as the taskshard peer does.
    targetedUpdates: true,
  };
}

/**
 * A peer's two hellos, as the taskshard peer sends them (peer/session-frames.ts): digest-first (the
 * schema named by `schemaDigest`), and the full one in answer to `UNKNOWN_SCHEMA`.
 */
interface HelloTexts {
  readonly digest: string;
  /** Made only when the authority asks for it (`UNKNOWN_SCHEMA`). */
  full(): string;
}

/**
 * `schemaDigestText`: `helloSchemaDigest(schema)`, computed once per run by the caller. Made per
 * connection inside the measured window, the digest (a hash of every step) and the full hello (the whole
 * schema as JSON) of a 1,000-step schema blocked a generator for 55-150 ms per 100 connections before it
 * could read its first `welcome`: a third of a one-cohort pass, charged to the authority's rate and p99.
 */
function helloTexts(fields: Omit<Hello, 'schema' | 'schemaDigest'>, schemaDigestText: string, wireSchema: WireSchema): HelloTexts {
  return { digest: JSON.stringify({ ...fields, schemaDigest: schemaDigestText }), full: () => JSON.stringify({ ...fields, schema: wireSchema }) };
}

/**
 * Before `go`, one peer of an earlier run: an isolated peer on a patchset of its own says hello
 * (digest-first, then the full hello the fresh authority asks for), is welcomed, and leaves. The
 * authority has then checked the bench schema, as a long-running authority has checked the schema of
 * the pipeline's earlier runs: the run measures hellos the authority knows (digest-first, no schema),
 * not the first peer after a schema change. It leaves one isolated cohort behind, never touched again.
 */
async function warmUp(cfg: GeneratorConfig): Promise<void> {
  const schema = benchSchema(cfg.stepsPerCohort);
  const texts = helloTexts(helloFields('bench-warmup', 'refs/changes/warmup/1', true), helloSchemaDigest(schema), wire(schema));
  const socket = await openLoadSocket(cfg.client, cfg.url, { localAddress: cfg.localAddress, handshakeTimeoutMs: 30_000 });
  return new Promise((resolve, reject) => {
    socket.onClose(() => resolve());
    socket.onText((text) => {
      const m = JSON.parse(text) as { type: string; code?: string; message?: string };
      if (m.type === 'error' && m.code === 'UNKNOWN_SCHEMA') return socket.send(texts.full());
      if (m.type === 'error') return reject(new Error(`warm-up hello refused: ${m.code}: ${m.message}`));
      if (m.type !== 'welcome') return;
      socket.send(JSON.stringify({ type: 'bye', reason: 'warm-up done' }));
    });
    socket.send(texts.digest);
  });
}

/** A frame the size of a `step.finished`, for the echo baseline. */
const echoFrame = JSON.stringify({ type: 'step.finished', leaseId: 'l_AbCdEfGhIjKl', stepId: 's123', ok: true, exitCode: 0, durationMs: 0 });

interface Conn {
  readonly socket: LoadSocket;
  readonly index: number;
  pendingSinceMs: number | null;
  done: boolean;
}

// One pass's state; a kept generator (bench-phases.ts, GeneratorPool) starts each pass afresh ({@link resetPass}).
let config: GeneratorConfig | null = null;
let conns: Conn[] = [];
let rounds = 0;
let framesReceived = 0;
let completes = 0;
let unexpectedCloses = 0;
let startedAtMs = 0;
let lastAtMs = 0;
let closing = false;
let reported = false;
let latencies: number[] = [];
let errors: Record<string, number> = {};

function resetPass(cfg: GeneratorConfig): void {
  config = cfg;
  conns = [];
  rounds = 0;
  framesReceived = 0;
  completes = 0;
  unexpectedCloses = 0;
  startedAtMs = 0;
  lastAtMs = 0;
  closing = false;
  reported = false;
  latencies = [];
  errors = {};
}

function result(): GeneratorResult {
  return { rounds, framesReceived, startedAtMs, finishedAtMs: lastAtMs, latenciesMs: latencies, completes, errors, unexpectedCloses };
}

function report(): void {
  if (reported) return;
  reported = true;
  send({ kind: 'done', result: result() });
}

/** The client id of a Task Director client (the original allows letters, digits and `_`); see {@link GeneratorConfig.pass}. */
const tdClientId = (pass: number, index: number): string => `bench${pass}_${index}`;

/** A v1 peer's id; see {@link GeneratorConfig.pass}. */
const peerIdOf = (pass: number, index: number): string => `bench${pass}-${index}`;

/** The one change of a cohort in a pass: a cohort of an earlier pass on the same server is never joined again. */
const patchsetOf = (pass: number, cohort: number): string => `refs/changes/${cohort}/${pass + 1}`;

async function open(cfg: GeneratorConfig, index: number): Promise<Conn> {
  const url = cfg.mode === generatorModes.taskDirector ? `${cfg.url.replace(/\/$/, '')}/ws/api/1/${tdClientId(cfg.pass, index)}/` : cfg.url;
  const socket = await openLoadSocket(cfg.client, url, { localAddress: cfg.localAddress, handshakeTimeoutMs: 30_000 });
  socket.onClose(() => {
    if (!closing) unexpectedCloses++;
  });
  return { socket, index, pendingSinceMs: null, done: false };
}

async function connectAll(cfg: GeneratorConfig): Promise<void> {
  let next = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async (): Promise<void> => {
    while (next < cfg.count) {
      const index = cfg.firstPeer + next++;
      try {
        conns.push(await open(cfg, index));
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency, cfg.count) }, worker));
  conns.sort((a, b) => a.index - b.index);
  // Once per server process: a later pass finds the schema checked already, as the first did.
  if (cfg.mode === generatorModes.protocol && cfg.firstPeer === 0 && cfg.pass === 0) {
    try {
      await warmUp(cfg);
    } catch (err) {
      failed++;
      firstError ??= `warm-up: ${(err as Error).message}`;
    }
  }
  send({ kind: 'connected', count: conns.length, failed, firstError });
}

function runEcho(cfg: GeneratorConfig): void {
  const stopAt = now() + cfg.windowMs;
  startedAtMs = now();
  let running = conns.length;
  for (const conn of conns) {
    conn.socket.onText(() => {
      const t = now();
      framesReceived++;
      latencies.push(t - conn.pendingSinceMs!);
      rounds++;
      lastAtMs = t;
      if (t >= stopAt) {
        conn.done = true;
        if (--running === 0) report();
        return;
      }
      conn.pendingSinceMs = t;
      conn.socket.send(echoFrame);
    });
    conn.pendingSinceMs = now();
    conn.socket.send(echoFrame);
  }
  if (conns.length === 0) report();
}

function runProtocol(cfg: GeneratorConfig, idle: boolean): void {
  const schema = benchSchema(cfg.stepsPerCohort);
  const wireSchema = wire(schema);
  const schemaDigestText = helloSchemaDigest(schema);
  startedAtMs = now();
  let remaining = conns.length;
  const finishOne = (conn: Conn): void => {
    if (conn.done) return;
    conn.done = true;
    if (--remaining === 0) report();
  };
  for (const conn of conns) {
    const cohort = Math.floor(conn.index / cfg.cohortSize);
    const hello = helloTexts(helloFields(peerIdOf(cfg.pass, conn.index), patchsetOf(cfg.pass, cohort), false), schemaDigestText, wireSchema);
    // A connection the server closed before complete is done (counted in unexpectedCloses), not awaited forever.
    conn.socket.onClose(() => finishOne(conn));
    conn.socket.onText((text) => {
      const t = now();
      framesReceived++;
      const m = JSON.parse(text) as { type: string; leaseId?: string; stepId?: string; code?: string };
      switch (m.type) {
        case 'assign':
          rounds++;
          lastAtMs = t;
          if (conn.pendingSinceMs !== null) latencies.push(t - conn.pendingSinceMs);
          if (idle) {
            finishOne(conn);
            return;
          }
          conn.pendingSinceMs = t;
          conn.socket.send(JSON.stringify({ type: 'step.finished', leaseId: m.leaseId, stepId: m.stepId, ok: true, exitCode: 0, durationMs: 0 }));
          return;
        case 'wait':
          conn.pendingSinceMs = null;
          if (idle) finishOne(conn);
          return;
        case 'complete':
          completes++;
          lastAtMs = t;
          finishOne(conn);
          return;
        case 'error':
          // The authority does not hold the schema (idle runs have no warm-up): the full hello, as the peer does.
          if (m.code === 'UNKNOWN_SCHEMA') return conn.socket.send(hello.full());
          errors[m.code ?? 'unknown'] = (errors[m.code ?? 'unknown'] ?? 0) + 1;
          // The closed loop has nothing left to send (a refused step.finished is not retried): the run reports it, not waits for it.
          finishOne(conn);
          return;
        default:
          return;
      }
    });
    conn.pendingSinceMs = now();
    conn.socket.send(hello.digest);
  }
  if (conns.length === 0) report();
}

/** The Task Director closed loop: every client in cohort `index / cohortSize` (one patchset per cohort). */
function runTaskDirector(cfg: GeneratorConfig): void {
  const schemaId = 'bench';
  startedAtMs = now();
  let remaining = conns.length;
  for (const conn of conns) {
    const cohort = Math.floor(conn.index / cfg.cohortSize);
    const finishOne = (): void => {
      if (conn.done) return;
      conn.done = true;
      if (--remaining === 0) report();
    };
    conn.socket.onClose(finishOne);
    conn.socket.onText((text) => {
      const t = now();
      framesReceived++;
      const m = JSON.parse(text) as { message_type: number; task_id?: string; error?: { code?: string } };
      if (m.message_type === 2) {
        rounds++;
        lastAtMs = t;
        if (conn.pendingSinceMs !== null) latencies.push(t - conn.pendingSinceMs);
        conn.pendingSinceMs = t;
        conn.socket.send(JSON.stringify({ message_type: 3, schema_id: schemaId, task_id: m.task_id, task_success: true }));
      } else if (m.message_type === 4) {
        completes++;
        lastAtMs = t;
        finishOne();
      } else if (m.message_type === 5 && m.error) {
        const code = m.error.code ?? 'unknown';
        errors[code] = (errors[code] ?? 0) + 1;
        // As the original client, it sends nothing more after a refusal (e.g. RATE_LIMITED: above 50 frames/s
        // past the burst of 200, one client alone): the run ends and reports it instead of waiting for --max-sec.
        finishOne();
      }
    });
    conn.pendingSinceMs = now();
    conn.socket.send(
      JSON.stringify({
        message_type: 1,
        repo_state: { bench_mono: { base_ref: 'main', patchset: patchsetOf(cfg.pass, cohort) } },
        complex_patchset: false,
        cache_id: 'bench_cache',
        schema_id: schemaId,
        total_tasks: cfg.stepsPerCohort,
      }),
    );
  }
  if (conns.length === 0) report();
}

async function closeAll(): Promise<void> {
  closing = true;
  await Promise.all(
    conns.map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.socket.closed) return resolve();
          const timer = setTimeout(() => {
            conn.socket.terminate();
            resolve();
          }, 5_000);
          conn.socket.onClose(() => {
            clearTimeout(timer);
            resolve();
          });
          conn.socket.close(1000);
        }),
    ),
  );
  send({ kind: 'closed' });
}

process.on('message', (raw: ParentMessage) => {
  try {
    if (raw.kind === 'config') {
      // A generator serves one pass at a time: config, connected, go, done, close, closed; then the next config or exit.
      if (config !== null && !closing) throw new Error('config for a new pass before the last one was closed');
      resetPass(raw);
      void connectAll(raw);
    } else if (raw.kind === 'go') {
      const cfg = config!;
      if (cfg.mode === generatorModes.echo) runEcho(cfg);
      else if (cfg.mode === generatorModes.protocol) runProtocol(cfg, false);
      else if (cfg.mode === generatorModes.idleProtocol) runProtocol(cfg, true);
      else if (cfg.mode === generatorModes.taskDirector) runTaskDirector(cfg);
      else report();
    } else if (raw.kind === 'close') {
      void closeAll();
    } else if (raw.kind === 'exit') {
      process.exit(0);
    }
  } catch (err) {
    send({ kind: 'fatal', message: (err as Error).stack ?? String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
