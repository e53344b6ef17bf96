import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../bench/bench-processes.js';
import { tempDir } from './temp-dir.js';

/**
 * nginx in front of several authorities, as docs/deployment.md configures it:
 * WebSocket upgrades passed through, and a 503 from a standby (or a refused
 * connection from a dead authority) retried on the next one, so peers given
 * the balancer's one URL always land on the active authority.
 */
export interface NginxBalancer {
  readonly port: number;
  readonly wsUrl: string;
  readonly config: string;
  /** The access log so far: one line per request, `METHOD URI STATUS UPSTREAMS UPSTREAM_STATUSES` (e.g. `... 200 127.0.0.1:5001, 127.0.0.1:5002 503, 200`). */
  accessLog(): string;
  stop(): Promise<void>;
}

/** The `http` block's balancing part, shared with docs/deployment.md (keep them equal). */
export function balancerConfig(upstreams: readonly number[], listenPort: number): string {
  return [
    'map $http_upgrade $connection_upgrade { default upgrade; "" close; }',
    'upstream taskshard {',
    // max_fails=0: never mark an authority down; a standby's 503 moves the request on instead.
    ...upstreams.map((p) => `  server 127.0.0.1:${p} max_fails=0;`),
    '}',
    'server {',
    `  listen 127.0.0.1:${listenPort};`,
    '  location / {',
    '    proxy_pass http://taskshard;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Upgrade $http_upgrade;',
    '    proxy_set_header Connection $connection_upgrade;',
    '    proxy_set_header Host $host;',
    '    proxy_next_upstream error timeout http_503 non_idempotent;',
    '    proxy_connect_timeout 2s;',
    '    proxy_read_timeout 1h;',
    '    proxy_send_timeout 1h;',
    '  }',
    '}',
  ].join('\n');
}

export async function startNginxBalancer(nginx: string, upstreams: readonly number[]): Promise<NginxBalancer> {
  const dir = tempDir('taskshard-nginx-');
  const port = await freePort();
  mkdirSync(join(dir.path, 'tmp'));
  const config = [
    'daemon off;',
    'master_process off;',
    `pid ${dir.file('nginx.pid')};`,
    `error_log ${dir.file('error.log')} warn;`,
    'events { worker_connections 512; }',
    'http {',
    // Which authorities each request went to, and what each answered: the passive failover, visible.
    "  log_format upstreams '$request_method $request_uri $status $upstream_addr $upstream_status';",
    `  access_log ${dir.file('access.log')} upstreams;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir.path, 'tmp', t)};`),
    balancerConfig(upstreams, port),
    '}',
  ].join('\n');
  writeFileSync(dir.file('nginx.conf'), config);
  const child: ChildProcess = spawn(nginx, ['-p', dir.path, '-c', dir.file('nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // nginx says nothing when it is up: wait until its port accepts a connection.
  const { createConnection } = await import('node:net');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}${readFileSync(dir.file('error.log'), 'utf8')}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not listen on ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}`,
    config,
    accessLog: () => readFileSync(dir.file('access.log'), 'utf8'),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      dir.remove();
    },
  };
}
