import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliPath, repoRoot, runCli } from '../helpers/cli.js';
import { endPeerWorkspace, freePort, newPeerWorkspace, startAuthority, startPeer, withoutCiEnv, type PeerWorkspace } from '../helpers/peer-e2e.js';

/** Every flag from TASKSHARD_<FLAG>, flags winning, help naming each variable, all problems at once, -v. */

let ws: PeerWorkspace;
beforeEach(() => {
  ws = newPeerWorkspace('taskshard-cli-env-', 2);
});
afterEach(() => endPeerWorkspace(ws));

/** Polls an async condition every 50 ms (for conditions no process announces). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The option entries of a --help text, each joined onto one line (`--port <port> port to listen on ... (default: 8080, env: TASKSHARD_PORT)`). */
function helpOptions(help: string): string[] {
  const options = help.slice(help.indexOf('\nOptions:\n') + '\nOptions:\n'.length);
  return options
    .split(/\n(?= {2}-)/)
    .map((e) => e.replace(/\s+/g, ' ').trim())
    .filter((e) => e.startsWith('-'));
}

const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...withoutCiEnv(process.env), TASKSHARD_TOKEN: '', ...extra });

describe('configuration from the environment', () => {
  it('taskshard server takes --port, --db and --host from TASKSHARD_PORT, TASKSHARD_DB, TASKSHARD_HOST', async () => {
    const port = await freePort();
    const db = ws.dir.file('from-env.db');
    const child = spawn(process.execPath, [cliPath, 'server'], { cwd: repoRoot, env: cleanEnv({ TASKSHARD_PORT: String(port), TASKSHARD_DB: db, TASKSHARD_HOST: '127.0.0.1', TASKSHARD_LOG_LEVEL: 'warn' }) });
    try {
      await eventually('the server answers on the port from TASKSHARD_PORT', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true);
      expect(existsSync(db)).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('taskshard peer runs from variables alone, and a flag wins over its variable', async () => {
    const auth = await startAuthority({ db: ws.dir.file('a.db') });
    const env = { TASKSHARD_SERVER: 'ws://127.0.0.1:1', TASKSHARD_SCHEMA: ws.schema, TASKSHARD_CACHE_ID: 'env-cache', TASKSHARD_PATCHSET: 'refs/a refs/b', TASKSHARD_QUIET: 'false', TASKSHARD_NO_UNIVERSE: 'true' };
    // --server on the command line beats TASKSHARD_SERVER (which points nowhere).
    const peer = startPeer({ name: 'e1', server: auth.wsUrl, schema: ws.schema, script: ws.script, env });
    expect(await peer.exit()).toBe(0);
    expect(peer.stdout).toMatch(/ main \+ refs\/a \+ refs\/b, cache e2e-cache,/); // --cache-id from startPeer wins too
    expect(peer.stdout).toMatch(/exit 0: every step resolved; universe skipped \(--no-universe\)/);
  });

  it('a bad variable is named; every missing required option and COMMAND are reported at once', () => {
    const bad = runCli(['peer', '--schema', ws.schema, '--', 'true'], { env: cleanEnv({ TASKSHARD_SERVER: 'ws://x', TASKSHARD_CACHE_ID: 'c', TASKSHARD_PATIENCE: 'soon', TASKSHARD_STRICT: 'maybe' }) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('taskshard peer: TASKSHARD_PATIENCE: expected a number, got "soon"');
    expect(bad.stderr).toContain('taskshard peer: TASKSHARD_STRICT: expected true or false (1/0, yes/no), got "maybe"');
    const missing = runCli(['peer'], { env: cleanEnv() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'taskshard peer: missing required options: --server (or TASKSHARD_SERVER), --schema (or TASKSHARD_SCHEMA), --cache-id (or TASKSHARD_CACHE_ID)\n' +
        'taskshard peer: COMMAND: missing; put it after --, e.g. -- bazel build {target}\n',
    );
    const server = runCli(['server'], { env: cleanEnv({ TASKSHARD_PORT: 'eighty', TASKSHARD_SYNC: 'sometimes' }) });
    expect(server.code).toBe(2);
    expect(server.stderr).toContain('TASKSHARD_PORT: expected an integer from 0 to 65535, got "eighty"');
    expect(server.stderr).toContain('TASKSHARD_SYNC: Allowed choices are normal, full.');
  });

  it('--help shows every flag with its variable and default; -v and --version print the version', () => {
    const version = runCli(['-v']).stdout;
    expect(version).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(runCli(['--version']).stdout).toBe(version);
    const peerHelp = runCli(['peer', '--help']).stdout.replace(/\s+/g, ' ');
    for (const flag of ['server', 'schema', 'cache-id', 'peer-id', 'repo', 'base-ref', 'base-sha', 'change-ref', 'patchset', 'cohort-key', 'pipeline', 'pipeline-type', 'isolated', 'token', 'no-universe', 'connect-timeout', 'patience', 'on-shared-failure', 'strict', 'check', 'report', 'quiet', 'progress-interval']) {
      expect(peerHelp, flag).toContain(`env: TASKSHARD_${flag.toUpperCase().replace(/-/g, '_')})`);
    }
    expect(peerHelp).toContain('(default: 10, env: TASKSHARD_CONNECT_TIMEOUT)');
    const serverHelp = runCli(['server', '--help']).stdout.replace(/\s+/g, ' ');
    for (const flag of ['host', 'port', 'db', 'lease-grace', 'memo-ttl', 'log-level', 'token-file', 'insecure-bind', 'max-payload-bytes', 'sync', 'straggler-factor', 'retention', 'max-lost-leases', 'ping-interval']) {
      expect(serverHelp, flag).toContain(`env: TASKSHARD_${flag.toUpperCase().replace(/-/g, '_')})`);
    }
    expect(serverHelp).toContain('(default: 8080, env: TASKSHARD_PORT)');
    // Every option of both commands, not only those listed above, names its variable.
    for (const command of ['peer', 'server']) {
      const entries = helpOptions(runCli([command, '--help']).stdout).filter((e) => !e.startsWith('-h, --help'));
      expect(entries.length, command).toBeGreaterThan(20);
      for (const entry of entries) {
        const flag = entry.match(/^--(?:no-)?([a-z-]+)/)![1]!;
        const negated = entry.startsWith('--no-') ? 'NO_' : '';
        expect(entry, `${command} ${flag}`).toContain(`env: TASKSHARD_${negated}${flag.toUpperCase().replace(/-/g, '_')})`);
      }
    }
  });

  it('a flag wins over its variable for the server too', async () => {
    const port = await freePort();
    const fromFlag = ws.dir.file('from-flag.db');
    const fromEnv = ws.dir.file('from-env.db');
    const child = spawn(process.execPath, [cliPath, 'server', '--db', fromFlag, '--port', String(port)], {
      cwd: repoRoot,
      env: cleanEnv({ TASKSHARD_PORT: '1', TASKSHARD_DB: fromEnv, TASKSHARD_HOST: '127.0.0.1', TASKSHARD_LOG_LEVEL: 'warn' }),
    });
    try {
      await eventually('the server answers on the port from --port', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true);
      expect(existsSync(fromFlag)).toBe(true);
      expect(existsSync(fromEnv)).toBe(false);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
