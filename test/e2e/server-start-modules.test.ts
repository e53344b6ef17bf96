import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killAll, startAuthority } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Start-up time (issue 11: restart ≤ 2 s) is mostly module loading, so the
 * authority on SQLite must not load what it does not use: the PostgreSQL
 * driver and leader election, the peer, the simulator, fastify's JSON-schema
 * compilers (ajv, fast-json-stringify: our routes validate with zod). A
 * preload records every module the process loads (ESM through a load hook,
 * CommonJS from the require cache) and writes the list when it exits.
 */
let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('taskshard-start-modules-');
});
afterEach(async () => {
  await killAll();
  dir.remove();
});

function writeRecorder(listFile: string): string {
  const hooksWithPort = dir.file('record-hooks.mjs');
  writeFileSync(
    hooksWithPort,
    [
      'let port;',
      'export function initialize(data) { port = data.port; }',
      'export async function load(url, context, next) { port.postMessage(url); return next(url, context); }',
      '',
    ].join('\n'),
  );
  const preload = dir.file('record.mjs');
  writeFileSync(
    preload,
    [
      "import { register, createRequire } from 'node:module';",
      "import { MessageChannel } from 'node:worker_threads';",
      "import { writeFileSync } from 'node:fs';",
      'const seen = new Set();',
      'const { port1, port2 } = new MessageChannel();',
      'port1.on("message", (url) => seen.add(url));',
      'port1.unref();',
      `register(${JSON.stringify(pathToFileURL(hooksWithPort).href)}, { data: { port: port2 }, transferList: [port2] });`,
      "process.on('exit', () => {",
      "  for (const file of Object.keys(createRequire(import.meta.url).cache)) seen.add(file);",
      `  writeFileSync(${JSON.stringify(listFile)}, [...seen].join('\\n'));`,
      '});',
      '',
    ].join('\n'),
  );
  return preload;
}

describe('taskshard server start-up', () => {
  it('on SQLite loads neither the PostgreSQL driver, the peer, the simulator nor ajv', async () => {
    const list = dir.file('modules.txt');
    const preload = writeRecorder(list);
    const authority = await startAuthority({ db: dir.file('a.db'), env: { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}` } });
    authority.proc.kill('SIGTERM');
    expect(await authority.proc.exit()).toBe(0);
    const modules = readFileSync(list, 'utf8').split('\n');
    // The recorder works: it saw the modules the server does use.
    expect(modules.some((m) => m.includes('/node_modules/fastify/'))).toBe(true);
    expect(modules.some((m) => m.includes('/node_modules/better-sqlite3/'))).toBe(true);
    expect(modules.some((m) => /\/dist\/server\/store\/sqlite-store\.js$/.test(m))).toBe(true);
    // (fastify's prebuilt error serializer uses two small files of fast-json-stringify/lib: not its compiler.)
    const unwanted = modules.filter((m) =>
      /\/node_modules\/(postgres|ajv|@fastify\/ajv-compiler|@fastify\/fast-json-stringify-compiler)\/|\/fast-json-stringify\/index\.js$|\/dist\/(peer|server\/sim|server\/ha|server\/store\/postgres)\//.test(m),
    );
    expect(unwanted).toEqual([]);
  });
});
