import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { saving } from '../server/sim/plan-format.js';
import { planSchedule } from '../server/sim/plan.js';
import { formatDuration } from '../server/sim/sim-format.js';
import { validateSchemaText } from '../shared/schema-validate.js';

/**
 * `npm run demo`: builds, starts an authority on a temporary SQLite file and
 * three peers on schemas/example.json whose steps simulate work (a sleep
 * scaled from each step's estimateSec), prints who built what and what it
 * saved in two units, build time and runner time, against the baselines
 * (shared remote cache in schema order and in random orders, simulated on the
 * durations and arrival times measured here), and exits 0 (well within a
 * minute). Everything is real: the CLI from dist/, WebSockets on loopback.
 */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repoRoot, 'dist/cli/main.js');
const schemaFile = join(repoRoot, 'schemas/example.json');
/** 1 estimated second of the example schema sleeps this long here (`--ms-per-estimate-sec N`, default 5; the smoke test uses 1). */
const msPerEstimateSec = msPerEstimateSecFlag(process.argv);
const universeMs = 300;
const peerIds = ['demo-a', 'demo-b', 'demo-c'];
const deadlineMs = 55_000;

const children: ChildProcess[] = [];
const out = (...lines: string[]): void => void process.stdout.write(lines.map((l) => `${l}\n`).join(''));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function msPerEstimateSecFlag(argv: readonly string[]): number {
  const at = argv.indexOf('--ms-per-estimate-sec');
  if (at === -1) return 5;
  const value = argv[at + 1];
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) {
    process.stderr.write(`demo: --ms-per-estimate-sec: expected an integer from 1 to 1000, got ${value === undefined ? 'nothing' : `"${value}"`}\n`);
    process.exit(2);
  }
  return Number(value);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function percent(part: number, whole: number): string {
  return `${whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10}%`;
}

/** `saves 7.1 s` or, when it cost more, `COSTS 2.0 s more`: a saving may be negative and says so. */
function saved(ms: number): string {
  return ms >= 0 ? `saves ${seconds(ms)}` : `COSTS ${seconds(-ms)} more`;
}

function readSchema(): Parameters<typeof planSchedule>[0]['schema'] {
  const result = validateSchemaText(readFileSync(schemaFile, 'utf8'), { defaultId: 'example' });
  if (!result.ok) throw new Error(`${schemaFile} is not a valid schema`);
  return result.schema;
}

/**
 * Build time and runner time measured here, and the shared-cache baselines
 * simulated on the same measured durations and arrival (join) times.
 */
function savingsLines(builtMs: number, measuredSec: ReadonlyMap<string, number>, joinedAt: ReadonlyMap<string, number>, completeAt: ReadonlyMap<string, number>): string[] {
  const runnerMsOf = (p: string): number => {
    const joined = joinedAt.get(p);
    const complete = completeAt.get(p);
    if (joined === undefined || complete === undefined) throw new Error(`peer ${p} printed no joined or complete line`);
    return complete - joined;
  };
  const runnerMs = peerIds.reduce((sum, p) => sum + runnerMsOf(p), 0);
  const firstJoin = Math.min(...peerIds.map((p) => joinedAt.get(p)!));
  const byArrival = [...peerIds].sort((a, b) => joinedAt.get(a)! - joinedAt.get(b)!);
  const baseline = planSchedule({ schema: readSchema(), peerCounts: [peerIds.length], arrivalsSec: byArrival.map((p) => (joinedAt.get(p)! - firstJoin) / 1000), durationsSec: measuredSec }).counts[0]!;
  const b = baseline.policies['baseline-shared-cache-schema-order'];
  const c = baseline.policies['baseline-shared-cache-random-order'];
  const everyone = builtMs * peerIds.length;
  const lines = [
    'build time = machine time spent building steps; runner time = each peer from joining to its universe build, waiting included, summed',
    `measured here: build time ${seconds(builtMs)} (each step built once; ${seconds(everyone)} if every peer built everything), runner time ${seconds(runnerMs)}`,
    `simulated on the same durations and join times: (b) shared remote cache, every job in schema order: build time ${seconds(b.buildMs)}, runner time ${seconds(b.runnerMs)}; (c) each job in its own random order: build time ${seconds(c.buildMs)}, runner time ${seconds(c.runnerMs)}`,
    `taskshard against (b): runner time ${saved(b.runnerMs - runnerMs)} (${percent(b.runnerMs - runnerMs, b.runnerMs)}), build time ${saved(b.buildMs - builtMs)} (${percent(b.buildMs - builtMs, b.buildMs)}); against (c): runner time ${saved(c.runnerMs - runnerMs)} (${percent(c.runnerMs - runnerMs, c.runnerMs)}), build time ${saved(c.buildMs - builtMs)}`,
  ];
  const aloneMs = [...measuredSec.values()].reduce((sum, sec) => sum + sec * 1000, 0);
  for (const p of peerIds) {
    lines.push(`  ${p}: building and waiting ${seconds(runnerMsOf(p))}, building every step alone ${seconds(aloneMs)}: ${saved(aloneMs - runnerMsOf(p))}`);
  }
  return lines;
}

/** The same comparison at the schema's real estimates, as `taskshard plan` computes it. */
function estimateLines(): string[] {
  const count = planSchedule({ schema: readSchema(), peerCounts: [peerIds.length], durationsSec: new Map() }).counts[0]!;
  const b = saving(count, 'baseline-shared-cache-schema-order');
  const c = saving(count, 'baseline-shared-cache-random-order');
  return [
    `at the schema's real estimates (npx taskshard plan --schema schemas/example.json --peers ${peerIds.length}): per run of ${peerIds.length} jobs taskshard saves ` +
      `${formatDuration(b.runnerMs)} of runner time (${b.runnerShare}) and ${formatDuration(b.buildMs)} of build time (${b.buildShare}) against a shared remote cache in schema order (b), ` +
      `${formatDuration(c.runnerMs)} of runner time (${c.runnerShare}) against random orders (c)`,
  ];
}

interface StepView {
  id: string;
  estimateSec: number | null;
  status: string;
  builtBy: string | null;
  durationMs: number | null;
}

async function main(): Promise<number> {
  const started = performance.now();
  if (!process.argv.includes('--no-build')) {
    out('building dist/ ...');
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as { steps: { id: string; estimateSec?: number }[] };
  const sleepMs: Record<string, number> = Object.fromEntries(schema.steps.map((s) => [s.id, (s.estimateSec ?? 60) * msPerEstimateSec]));
  sleepMs.universe = universeMs;
  // The step command every peer runs: sleep for the step's scaled estimate. {step} is substituted by the peer.
  const stepScript = `setTimeout(() => {}, (${JSON.stringify(sleepMs)})[process.argv[1]] ?? 0)`;

  const dir = mkdtempSync(join(tmpdir(), 'taskshard-demo-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let serverLog = '';
  try {
    const server = spawn(process.execPath, [cli, 'server', '--port', String(port), '--db', join(dir, 'demo.db'), '--log-level', 'warn'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    server.stdout.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr.on('data', (d: Buffer) => (serverLog += d.toString()));
    for (;;) {
      if (server.exitCode !== null) throw new Error(`the authority exited with ${server.exitCode}:\n${serverLog}`);
      if (performance.now() - started > deadlineMs) throw new Error('the authority did not start');
      const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    out(`authority: ${cli} server on ${base}, SQLite ${join(dir, 'demo.db')}`);
    out(`peers: ${peerIds.join(', ')} on ${schemaFile}; each step sleeps ${msPerEstimateSec} ms per estimated second\n`);

    const peerStart = performance.now();
    /** When each peer joined its cohort and when it got `complete` (ms after peerStart): its runner time until the universe build. */
    const joinedAt = new Map<string, number>();
    const completeAt = new Map<string, number>();
    const exits = await Promise.all(
      peerIds.map(
        (peerId) =>
          new Promise<number | null>((resolve) => {
            const child = spawn(
              process.execPath,
              [cli, 'peer', '--server', `ws://127.0.0.1:${port}`, '--schema', schemaFile, '--cache-id', 'demo', '--peer-id', peerId,
                '--repo', 'https://example.com/acme/mono.git', '--base-ref', 'main', '--change-ref', 'refs/changes/42/1',
                '--', process.execPath, '-e', stepScript, '{step}'],
              { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
            );
            children.push(child);
            let stderr = '';
            child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
            createInterface({ input: child.stdout }).on('line', (line) => {
              const at = performance.now() - peerStart;
              if (/joined cohort/.test(line)) joinedAt.set(peerId, at);
              if (/: complete \(/.test(line)) completeAt.set(peerId, at);
              if (/joined cohort|assigned|complete \(|exit \d/.test(line)) out(`[${peerId}] ${line.replace(/^taskshard: /, '')}`);
            });
            const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, deadlineMs - (performance.now() - started)));
            child.on('close', (code) => {
              clearTimeout(timer);
              if (code !== 0) out(`[${peerId}] exited with ${code}\n${stderr}`);
              resolve(code);
            });
          }),
      ),
    );
    const wallMs = performance.now() - peerStart;
    if (exits.some((c) => c !== 0)) throw new Error(`a peer failed (exit codes ${exits.join(', ')})`);

    const list = (await (await fetch(`${base}/api/v1/cohorts`)).json()) as { cohorts: { id: string; peers: number }[] };
    const cohort = list.cohorts[0]!;
    const detail = (await (await fetch(`${base}/api/v1/cohorts/${cohort.id}`)).json()) as { steps: StepView[] };
    out(`\nwho built what (cohort ${cohort.id}, ${cohort.peers} peers):`);
    let builtMs = 0;
    const measuredSec = new Map<string, number>();
    const perPeer = new Map<string, string[]>(peerIds.map((p) => [p, []]));
    for (const step of detail.steps) {
      if (step.status !== 'succeeded' || step.builtBy === null) throw new Error(`step ${step.id} is ${step.status}`);
      builtMs += step.durationMs ?? 0;
      measuredSec.set(step.id, Math.max(1, step.durationMs ?? 0) / 1000);
      perPeer.get(step.builtBy)?.push(step.id);
      out(`  ${step.id.padEnd(11)} built by ${step.builtBy}  ${seconds(step.durationMs ?? 0)}`);
    }
    for (const [peerId, steps] of perPeer) out(`  ${peerId}: ${steps.length} ${steps.length === 1 ? 'step' : 'steps'} (${steps.join(', ') || 'none'})`);
    out('');
    out(...savingsLines(builtMs, measuredSec, joinedAt, completeAt));
    out(`wall time: all three peers finished (steps and universe) in ${seconds(wallMs)}`);
    out(...estimateLines());
    return 0;
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

// `npm run demo -- --real bazel|turbo`: a real build tool and remote cache (scripts/demo-real.ts).
if (process.argv.includes('--real')) {
  await import('./demo-real.js');
} else {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      process.stderr.write(`demo failed: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
