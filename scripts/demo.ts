import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * `npm run demo`: builds, starts an authority on a temporary SQLite file and
 * three peers on schemas/example.json whose steps simulate work (a sleep
 * scaled from each step's estimateSec), prints who built what and the machine
 * time saved against every peer building everything, and exits 0 (well within
 * a minute). Everything is real: the CLI from dist/, WebSockets on loopback.
 */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repoRoot, 'dist/cli/main.js');
const schemaFile = join(repoRoot, 'schemas/example.json');
/** 1 estimated second of the example schema sleeps this long here. */
const msPerEstimateSec = 5;
const universeMs = 300;
const peerIds = ['demo-a', 'demo-b', 'demo-c'];
const deadlineMs = 55_000;

const children: ChildProcess[] = [];
const out = (line: string): void => void process.stdout.write(`${line}\n`);

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

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function hms(sec: number): string {
  const h = Math.floor(sec / 3600);
  const m = Math.round((sec % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m`;
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
    let estimateSec = 0;
    const perPeer = new Map<string, string[]>(peerIds.map((p) => [p, []]));
    for (const step of detail.steps) {
      if (step.status !== 'succeeded' || step.builtBy === null) throw new Error(`step ${step.id} is ${step.status}`);
      builtMs += step.durationMs ?? 0;
      estimateSec += step.estimateSec ?? 60;
      perPeer.get(step.builtBy)?.push(step.id);
      out(`  ${step.id.padEnd(11)} built by ${step.builtBy}  ${seconds(step.durationMs ?? 0)}`);
    }
    for (const [peerId, steps] of perPeer) out(`  ${peerId}: ${steps.length} ${steps.length === 1 ? 'step' : 'steps'} (${steps.join(', ') || 'none'})`);
    const everyone = builtMs * peerIds.length;
    out(
      `\nmachine time on steps: ${seconds(builtMs)} with taskshard (each step built once) vs ${seconds(everyone)} if every peer built everything: ` +
        `saved ${seconds(everyone - builtMs)} (${Math.round(((everyone - builtMs) / everyone) * 100)}%)`,
    );
    out(`wall time: all three peers finished (steps and universe) in ${seconds(wallMs)}; one peer building every step alone needs ${seconds(builtMs)} before its universe build`);
    out(`at the schema's real estimates that is ${hms(estimateSec * (peerIds.length - 1))} of machine time saved per run of ${peerIds.length} jobs (${hms(estimateSec)} of steps, built once instead of ${peerIds.length} times)`);
    return 0;
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

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
