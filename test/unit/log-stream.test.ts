import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { StdoutLog } from '../../server/log-stream.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * server/log-stream.ts against a real FIFO that the test reads when it chooses: lines beyond the
 * bound are dropped whole, counted, exported, and said in a warning line once one gets through.
 */
let dir: ReturnType<typeof tempDir> | null = null;
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  dir?.remove();
  dir = null;
});

function fifo(): { readFd: number; writeFd: number } {
  dir = tempDir('taskshard-log-stream-');
  const path = dir.file('log.fifo');
  expect(spawnSync('mkfifo', [path]).status).toBe(0);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, 'w');
  fds.push(readFd, writeFd);
  return { readFd, writeFd };
}

function readNow(fd: number): string {
  const buf = Buffer.alloc(64 * 1024);
  let text = '';
  for (;;) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return text;
      text += buf.toString('utf8', 0, n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return text;
      throw err;
    }
  }
}

describe('StdoutLog', () => {
  it.skipIf(process.platform !== 'linux')('drops whole lines beyond its bound while nobody reads, counts them, and says so once a line gets through', async () => {
    const { readFd, writeFd } = fifo();
    const out = new StdoutLog({ fd: writeFd, maxBytes: 8 * 1024, reportAfterMs: 5 });
    const registry = new Registry();
    out.register(registry);
    const log = pino({ level: 'info', base: null, timestamp: false }, out.stream);
    out.reportTo(log);
    const total = 2_000;
    // About 200 KB at once: the FIFO holds 64 KB, the buffer 8 KB, the rest is dropped.
    for (let i = 0; i < total; i++) log.info({ i, pad: 'x'.repeat(60) }, 'line');
    const dropped = out.dropped;
    expect(dropped).toBeGreaterThan(total / 2);
    expect(await registry.getSingleMetricAsString('taskshard_log_lines_dropped_total')).toMatch(new RegExp(`^taskshard_log_lines_dropped_total ${dropped}$`, 'm'));

    // Now read until the warning has come through.
    let text = '';
    const by = Date.now() + 10_000;
    while (!text.includes('log lines dropped')) {
      if (Date.now() > by) throw new Error(`no warning line; read ${text.length} bytes`);
      text += readNow(readFd);
      await new Promise((r) => setTimeout(r, 5));
    }
    const records = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { msg: string; i?: number; droppedLines?: number; droppedTotal?: number });
    const lines = records.filter((r) => r.msg === 'line');
    const warnings = records.filter((r) => r.msg === 'log lines dropped: stdout did not keep up');
    // Every line either arrived whole, in order, or was dropped and counted.
    expect(lines.length + dropped).toBe(total);
    const seen = lines.map((r) => r.i!);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(warnings.at(-1)).toMatchObject({ droppedTotal: out.dropped });
    expect(warnings.reduce((sum, w) => sum + w.droppedLines!, 0)).toBe(out.dropped);
  });
});
