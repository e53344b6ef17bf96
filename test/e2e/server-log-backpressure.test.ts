import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { get } from '../helpers/http-probe.js';
import { freePort, waitUntil } from '../helpers/peer-e2e.js';
import { helloFor, RawPeer } from '../helpers/raw-peer.js';
import { flatSchema } from '../helpers/schemas.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * A log reader that stops reading never stalls the authority (issue 11): its stdout is a FIFO
 * that nobody reads while 400 peers join, far more log than a pipe holds (64 KiB on Linux). With
 * pino's synchronous default the authority's event loop would wait in write(2) once the FIFO was
 * full, and no peer after that would be welcomed, nor /healthz answered. Then the test reads the
 * FIFO: every line is there, whole and in order.
 */
const peers = 400;
let dir: ReturnType<typeof tempDir> | null = null;
let server: ChildProcess | null = null;
let readFd: number | null = null;

afterEach(async () => {
  if (server !== null && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  }
  server = null;
  if (readFd !== null) closeSync(readFd);
  readFd = null;
  dir?.remove();
  dir = null;
});

/** Everything in the FIFO now (non-blocking reads until it is empty, or until the writer closed it). */
function drain(fd: number): { text: string; eof: boolean } {
  const buf = Buffer.alloc(64 * 1024);
  let text = '';
  for (;;) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return { text, eof: true };
      text += buf.toString('utf8', 0, n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return { text, eof: false };
      throw err;
    }
  }
}

describe('the JSON log on stdout', () => {
  it.skipIf(process.platform !== 'linux')('does not stall the authority while nobody reads it, and loses no line', async () => {
    dir = tempDir('taskshard-log-fifo-');
    const fifo = dir.file('stdout.fifo');
    const made = spawnSync('mkfifo', [fifo]);
    expect(made.status, `mkfifo: ${made.stderr}`).toBe(0);
    // The reading end first, non-blocking, so opening the writing end does not wait; then nobody reads.
    readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, 'w');
    const port = await freePort();
    const child = spawn(process.execPath, [cliPath, 'server', '--host', '127.0.0.1', '--port', String(port), '--db', dir.file('a.db'), '--log-level', 'info'], {
      cwd: repoRoot,
      env: { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '' },
      stdio: ['ignore', writeFd, 'pipe'],
    });
    server = child;
    closeSync(writeFd);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Up: /healthz answers (polled; the listening line is in the FIFO, which nobody reads yet).
    const upBy = Date.now() + 15_000;
    while ((await get(port, '/healthz').catch(() => null))?.status !== 200) {
      if (Date.now() > upBy || child.exitCode !== null) throw new Error(`the authority did not come up; stderr:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const schema = flatSchema(4);
    for (let i = 0; i < peers; i++) {
      const peer = await RawPeer.connect(`ws://127.0.0.1:${port}/v1/peer`);
      // Each its own change, so each makes a cohort: cohort created, peer joined, step assigned, peer left, ... lines.
      peer.send(helloFor(`p${i}`, schema, { repo: `https://example.com/acme/r${i}.git`, patchsets: [`refs/changes/${i}/1`] }));
      await peer.waitType('welcome');
      await peer.close();
    }
    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);

    // The FIFO is full: what it holds is less than what was logged for the peers above (see below).
    const text = drain(readFd).text;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024 * 1024);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    let rest = '';
    await waitUntil('the log to end (the authority exited and closed stdout)', () => {
      const d = drain(readFd!);
      rest += d.text;
      return d.eof;
    }, 15_000, () => stderr);
    expect(await exited).toBe(0);
    // Each peer's lines were logged (at its commit) before its welcome went out, so all of this was
    // handed to the log while nobody read: more than twice what a pipe holds.
    expect(Buffer.byteLength(text + rest)).toBeGreaterThan(2 * 64 * 1024);
    const lines = (text + rest).split('\n');
    expect(lines.pop()).toBe('');
    const records = lines.map((line) => JSON.parse(line) as { msg: string; peerId?: string });
    const joined = records.filter((r) => r.msg === 'peer joined').map((r) => r.peerId);
    expect(joined).toEqual(Array.from({ length: peers }, (_, i) => `p${i}`));
    expect(records.filter((r) => r.msg.startsWith('log lines dropped'))).toEqual([]);
    expect(records.at(-1)?.msg).not.toBe('taskshard authority listening');
    expect(stderr).toBe('');
  }, 60_000);
});
