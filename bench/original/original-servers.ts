import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, within } from '../bench-processes.js';

/**
 * The original Task Director server (github.com/alexander-scott/task-sharding,
 * `server/`) as it runs in production: daphne serving the Django Channels
 * application, a `runworker controller` process holding the scheduling state,
 * and redis as the channel layer between them — all on 127.0.0.1, from
 * Debian's packages, with a settings module that imports the project's own
 * settings and overrides only the channel layer (redis on our port),
 * ALLOWED_HOSTS, DEBUG and logging (warnings to stderr, as the authority runs
 * with --log-level warn).
 */

/** Debian's packages the original needs, and the Python module each provides. */
export const originalPackages: readonly { readonly deb: string; readonly module: string }[] = [
  { deb: 'python3-django', module: 'django' },
  { deb: 'python3-django-channels', module: 'channels' },
  { deb: 'python3-channels-redis', module: 'channels_redis' },
  { deb: 'python3-daphne', module: 'daphne' },
];

/** What is missing to run the original, one line each (empty: it can run). */
export function missingForOriginal(originalDir: string | null, python: string, redisServer: string): string[] {
  const missing: string[] = [];
  if (originalDir === null) {
    missing.push('no checkout of the original: pass --original DIR (git clone https://github.com/alexander-scott/task-sharding DIR)');
  } else {
    for (const f of ['server/manage.py', 'server/server/settings.py', 'server/task_sharding/src/controller.py']) {
      if (!existsSync(join(originalDir, f))) missing.push(`--original ${originalDir}: no ${f} (expected a checkout of alexander-scott/task-sharding)`);
    }
  }
  const probe = spawnSync(python, ['-c', 'import sys; print(sys.version.split()[0])'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    missing.push(`no Python at ${python} (--python PATH; Debian: apt-get install python3)`);
  } else {
    for (const p of originalPackages) {
      const r = spawnSync(python, ['-c', `import ${p.module}`], { encoding: 'utf8' });
      if (r.status !== 0) missing.push(`${python} cannot import ${p.module} (Debian: apt-get install ${p.deb})`);
    }
  }
  const redis = spawnSync(redisServer, ['--version'], { encoding: 'utf8' });
  if (redis.error || redis.status !== 0) missing.push(`no redis-server at ${redisServer} (--redis-server PATH; Debian: apt-get install redis-server)`);
  return missing;
}

export interface OriginalServers {
  /** ws:// origin the clients connect to (`/ws/api/1/<client id>/`). */
  readonly origin: string;
  /** daphne, the controller worker and redis: CPU is summed over all three. */
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, what: string, children: readonly ChildProcess[], ms: number, logFile: string): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new Error(`${what}: a process of the original exited (${dead.signalCode ?? `code ${dead.exitCode}`}); its log:\n${tail(logFile)}`);
    if (await portOpen(port)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} on port ${port}; log:\n${tail(logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts redis, the controller worker and daphne; resolves when daphne accepts connections. */
export async function startOriginal(originalDir: string, python: string, redisServer: string, startupMs = 60_000): Promise<OriginalServers> {
  const dir = mkdtempSync(join(tmpdir(), 'taskshard-original-'));
  const redisPort = await freePort();
  const httpPort = await freePort();
  writeFileSync(
    join(dir, 'bench_settings.py'),
    [
      'from server.settings import *  # noqa: F401,F403 -- the project settings, unchanged but for what follows',
      'DEBUG = False',
      'ALLOWED_HOSTS = ["127.0.0.1", "localhost"]',
      `CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [("127.0.0.1", ${redisPort})]}}}`,
      'LOGGING = {"version": 1, "disable_existing_loggers": False, "handlers": {"console": {"class": "logging.StreamHandler", "level": "WARNING"}}, "root": {"handlers": ["console"], "level": "WARNING"}}',
      `DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ${JSON.stringify(join(dir, 'db.sqlite3'))}}}`,
      '',
    ].join('\n'),
  );
  const serverDir = join(originalDir, 'server');
  const env = { ...process.env, PYTHONPATH: `${dir}:${serverDir}`, DJANGO_SETTINGS_MODULE: 'bench_settings', PYTHONDONTWRITEBYTECODE: '1' };
  const logFile = join(dir, 'original.log');
  const log = createWriteStream(logFile);
  const children: ChildProcess[] = [];
  const start = (cmd: string, args: string[]): ChildProcess => {
    const child = spawn(cmd, args, { cwd: serverDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    children.push(child);
    return child;
  };
  const stop = async (): Promise<void> => {
    for (const c of [...children].reverse()) await stopChild(c, 'SIGTERM', 5_000);
    log.end();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const redis = start(redisServer, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning']);
    await waitForPort(redisPort, 'redis', children, startupMs, logFile);
    const worker = start(python, ['manage.py', 'runworker', 'controller']);
    const daphne = start(python, ['-m', 'daphne', '-b', '127.0.0.1', '-p', String(httpPort), 'server.asgi:application']);
    await waitForPort(httpPort, 'daphne', children, startupMs, logFile);
    // The worker has no port; it must at least still be running (a bad import ends it at once).
    await within(new Promise((r) => setTimeout(r, 1_000)), 5_000, 'the controller worker to start');
    if (worker.exitCode !== null) throw new Error(`the controller worker exited (code ${worker.exitCode}); log:\n${tail(logFile)}`);
    return { origin: `ws://127.0.0.1:${httpPort}`, pids: [daphne.pid!, worker.pid!, redis.pid!], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
