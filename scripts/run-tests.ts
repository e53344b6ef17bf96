import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureDistBuilt } from '../test/helpers/dist-build.js';
import { repoRoot } from '../test/helpers/cli.js';

/**
 * `npm test`: builds dist/ once, then runs the two vitest runs side by side and exits non-zero if
 * either fails:
 *   - the suite (vitest.config.ts: unit, store, integration, e2e, browser; two files at a time),
 *   - the real-build tests (vitest.real.config.ts: Bazel and turbo, one file at a time).
 * Most of the suite waits on processes and sockets, so the real builds use CPU it leaves idle.
 * The suite's output passes through as it is; the real-build run's lines are prefixed `real | `.
 */
if (process.argv.length > 2) {
  process.stderr.write('npm test takes no arguments; for some files: npx vitest run FILE... (or --config vitest.real.config.ts)\n');
  process.exit(2);
}

const started = performance.now();
const seconds = (): string => `${Math.round((performance.now() - started) / 1000)} s`;
const vitest = join(repoRoot, 'node_modules/vitest/vitest.mjs');
// Piped output loses the terminal; keep vitest's colours when ours is one.
const env = process.stdout.isTTY && process.env.NO_COLOR === undefined ? { ...process.env, FORCE_COLOR: '1' } : process.env;

process.stdout.write(`npm test: dist/ ${ensureDistBuilt() === 'built' ? 'built' : 'is current'} (${seconds()})\n`);

/** Copies a stream to ours line by line (so two runs never interleave within a line), each with `prefix`. */
function relay(stream: NodeJS.ReadableStream, to: NodeJS.WriteStream, prefix: string): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    if (lines.length > 0) to.write(lines.map((l) => `${prefix}${l}\n`).join(''));
  });
  stream.on('end', () => {
    if (partial !== '') to.write(`${prefix}${partial}\n`);
    partial = '';
  });
}

interface Run {
  readonly name: string;
  readonly child: ChildProcess;
  readonly done: Promise<string | null>;
}

/** Starts `vitest run ARGS`; `done` resolves to null on exit 0, else to how it ended. */
function run(name: string, args: string[], prefix: string): Run {
  const child = spawn(process.execPath, [vitest, 'run', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  relay(child.stdout!, process.stdout, prefix);
  relay(child.stderr!, process.stderr, prefix);
  const done = new Promise<string | null>((resolve) => {
    child.on('error', (err) => resolve(`could not start: ${err.message}`));
    child.on('close', (code, signal) => {
      process.stdout.write(`npm test: ${name} ${code === 0 ? 'passed' : 'FAILED'} (${seconds()})\n`);
      resolve(code === 0 ? null : signal ? `killed by ${signal}` : `exit ${code}`);
    });
  });
  return { name, child, done };
}

const runs = [run('the suite (vitest.config.ts)', [], ''), run('the real-build tests (vitest.real.config.ts)', ['--config', 'vitest.real.config.ts'], 'real | ')];
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const r of runs) if (r.child.exitCode === null && r.child.pid !== undefined) process.kill(r.child.pid, signal);
  });
}
const failures = (await Promise.all(runs.map(async (r) => ({ name: r.name, how: await r.done })))).filter((f) => f.how !== null);
for (const f of failures) process.stderr.write(`npm test: ${f.name} failed (${f.how})\n`);
process.stdout.write(`npm test: ${failures.length === 0 ? 'all passed' : 'FAILED'} in ${seconds()}\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
