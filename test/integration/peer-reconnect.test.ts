import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { PeerReport } from '../../peer/report.js';
import { PeerSession, type SessionOutcome } from '../../peer/session.js';
import { closeCodes } from '../../shared/close-codes.js';
import type { Hello, Welcome } from '../../shared/protocol.js';
import { flatSchema, wireSchema } from '../helpers/schemas.js';

/**
 * The peer session against stand-in authorities on loopback (real `ws`
 * sockets): how it reconnects after close code 1012 (planned handover) and
 * how it moves along a list of servers to the active one. The backoff is set
 * to 60 s (twice the test timeout), so a reconnect seen within the test's seconds was not backed off.
 */

const schema = flatSchema(1);
const slowBackoff = { baseMs: 120_000, capMs: 120_000 };

/** An authority stand-in: answers 503 + Retry-After to upgrades while `standby`, else welcomes every hello. */
class FakeAuthority {
  readonly hellos: Hello[] = [];
  readonly sockets: WebSocket[] = [];
  standby = false;
  standbyRefusals = 0;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly http: Server = createServer((_req, res) => res.writeHead(404).end());
  private readonly waiters: (() => void)[] = [];

  constructor() {
    this.http.on('upgrade', (req, socket: Socket, head) => {
      // The peer may reset a refused or killed connection; that is expected, not an unhandled error.
      socket.on('error', () => undefined);
      if (this.standby) {
        this.standbyRefusals++;
        const body = JSON.stringify({ error: { code: 'STANDBY', message: 'this authority is on standby' } });
        socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
        this.poke();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.push(ws);
        ws.on('error', () => undefined);
        ws.on('message', (data) => {
          const frame = JSON.parse(String(data)) as { type: string };
          if (frame.type !== 'hello') return;
          const hello = frame as Hello;
          this.hellos.push(hello);
          const welcome: Welcome = {
            type: 'welcome',
            protocol: 1,
            peerId: hello.peerId,
            resumeToken: `token-${this.hellos.length}`,
            resumed: hello.resumeToken !== undefined,
            cohort: { id: 'c_1', peers: 1, steps: 1, resolved: 0, succeeded: [] },
            pingIntervalMs: 0,
          };
          ws.send(JSON.stringify(welcome));
          this.poke();
        });
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}/v1/peer`;
  }

  /** Resolves once `check()` holds (re-checked on every hello and refusal). */
  until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const attempt = (): void => (check() ? resolve() : void this.waiters.push(attempt));
      attempt();
    });
  }

  /** Closes every peer socket with `code` (1012 on a handover) and stops listening. */
  async stop(code: number = closeCodes.goingAway): Promise<void> {
    for (const ws of this.sockets) ws.close(code, 'stand-in authority going away');
    this.http.closeAllConnections();
    if (this.http.listening) await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.wss.close();
  }

  /** As after kill -9: every peer socket drops without a close frame, then connections are refused. */
  async kill(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await this.stop();
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

interface Run {
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly outcome: Promise<SessionOutcome>;
  stop(): Promise<SessionOutcome>;
}

function startSession(servers: readonly string[]): Run {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  err.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const stop = new AbortController();
  const session = new PeerSession({
    servers,
    token: null,
    hello: {
      type: 'hello',
      protocol: 1,
      peerId: 'p1',
      repo: 'https://example.com/r.git',
      baseRef: 'main',
      patchsets: [],
      pipeline: { name: 'default', type: 'independent' },
      isolated: false,
      cacheId: 'cache',
      schema: wireSchema(schema),
    },
    schema,
    onSharedFailure: 'fail',
    connectTimeoutMs: 20_000,
    patienceMs: 60_000,
    backoff: slowBackoff,
    random: () => 0, // the smallest jitter: a backed-off retry waits 60 s
    runner: async () => ({ ok: true, exitCode: 0 }),
    report: new PeerReport(out, err, null, false),
    now: () => performance.now(),
  });
  const outcome = session.run(stop.signal);
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    outcome,
    stop: () => {
      stop.abort();
      return outcome;
    },
  };
}

const authorities: FakeAuthority[] = [];
const runs: Run[] = [];
async function authority(): Promise<[FakeAuthority, string]> {
  const a = new FakeAuthority();
  authorities.push(a);
  return [a, await a.listen()];
}
function session(servers: readonly string[]): Run {
  const run = startSession(servers);
  runs.push(run);
  return run;
}

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => r.stop()));
  await Promise.all(authorities.splice(0).map((a) => a.stop()));
});

describe('peer reconnect on close code 1012 (service restart)', () => {
  it('one server (behind a load balancer): reconnects to the same URL at once, without backoff, and resumes', async () => {
    const [a, url] = await authority();
    const run = session([url]);
    await a.until(() => a.hellos.length === 1);
    for (const ws of a.sockets) ws.close(closeCodes.serviceRestart, 'handing over');
    await a.until(() => a.hellos.length === 2);
    expect(a.hellos[1]!.resumeToken).toBe('token-1');
    expect(run.stderr()).toMatch(/reconnecting in 0 ms \(first try\)/);
    await expect.poll(() => run.stdout()).toMatch(/reconnected and resumed in cohort c_1/);
  });

  it('the same close with 1001 (going away) backs off instead', async () => {
    const [a, url] = await authority();
    const run = session([url]);
    await a.until(() => a.hellos.length === 1);
    for (const ws of a.sockets) ws.close(closeCodes.goingAway, 'bye');
    await expect.poll(() => run.stderr()).toMatch(/reconnecting in 60000 ms \(after 1 failed try\)/);
    expect(a.hellos).toHaveLength(1);
  });

  it('several servers: goes to the next one at once and resumes there with its token', async () => {
    const [a, urlA] = await authority();
    const [b, urlB] = await authority();
    const run = session([urlA, urlB]);
    await a.until(() => a.hellos.length === 1);
    await a.stop(closeCodes.serviceRestart);
    await b.until(() => b.hellos.length === 1);
    expect(b.hellos[0]!.resumeToken).toBe('token-1');
    expect(run.stderr()).toContain(`reconnecting to ${urlB} in 0 ms`);
    await expect.poll(() => run.stdout()).toContain(`reconnected and resumed in cohort c_1 (1 peer, 0/1 steps resolved), now on ${urlB}`);
    expect(run.stdout()).toContain(`cohort page: http://127.0.0.1:${new URL(urlB).port}/cohorts/c_1 (the active authority changed)`);
  });
});

describe('peer with several servers', () => {
  it('the active one dies: skips the standby (503) until it takes over, then resumes there; the dead one is backed off', async () => {
    const [a, urlA] = await authority();
    const [b, urlB] = await authority();
    b.standby = true;
    const run = session([urlA, urlB]);
    await a.until(() => a.hellos.length === 1);
    await a.kill();
    await b.until(() => b.standbyRefusals >= 2);
    // The standby said Retry-After: 1; the dead one is on its 60 s backoff, so the peer asked the standby again.
    expect(run.stderr()).toMatch(new RegExp(`connection to the authority at ${urlB.replace(/[/.]/g, '\\$&')} ended: HTTP 503: this authority is on standby`));
    expect(run.stderr()).toMatch(/reconnecting to \S+ in 1\d{3} ms/);
    b.standby = false;
    await b.until(() => b.hellos.length === 1);
    expect(b.hellos[0]!.resumeToken).toBe('token-1');
    await expect.poll(() => run.stdout()).toContain(`now on ${urlB}`);
    expect(run.stdout()).toContain(`lost the authority at ${urlA}`);
    expect(run.stdout()).not.toMatch(/FAILING OPEN/);
  });

  it('first listed one down at start: joins the second at once', async () => {
    const [b, urlB] = await authority();
    const [dead, urlDead] = await authority();
    await dead.stop();
    const run = session([urlDead, urlB]);
    await b.until(() => b.hellos.length === 1);
    expect(b.hellos[0]!.resumeToken).toBeUndefined();
    await expect.poll(() => run.stdout()).toContain(`cohort page: http://127.0.0.1:${new URL(urlB).port}/cohorts/c_1`);
    expect(run.stdout()).toContain(`cannot reach the authority at ${urlDead} yet`);
  });
});
