import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import type { ErrorCode } from '../../shared/error-codes.js';
import type { Authority } from '../authority.js';
import type { ServerConfig } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { ConnId } from '../core/effects.js';
import type { Metrics } from './metrics.js';
import { capText } from '../../shared/text-caps.js';
import { ConnectionGuard } from './connection-guard.js';

/**
 * What every peer connection shares, whatever its wire protocol (v1 on
 * `/v1/peer`, the original Task Director format on `/ws/api/...`): a token
 * bucket and the size rules (connection-guard.ts), strikes for bad frames
 * ending in close 1008, error frames that never reach the core (so they
 * cannot change state), the slow-reader cutoff, liveness, and turning a bug
 * into `INTERNAL` for this connection only.
 *
 * The adapter (peer-socket.ts, task-director-socket.ts) owns the socket's
 * events and the connection's sink at the authority, and calls in here; this
 * file never calls back into an adapter. Each adapter reads top to bottom:
 *
 *   frame  -> session.admit (limits; null: refused here) -> decode -> authority.submit
 *             -> session.decoded (metrics, the oversized-first-frame rule)
 *   effect -> the adapter's sink renders its frames -> session.write
 *   close  -> session.closed() -> authority.submit({ kind: 'disconnected' })
 */
export interface SocketDeps {
  readonly authority: Authority;
  readonly metrics: Metrics;
  readonly config: ServerConfig;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
  readonly liveness: LivenessMonitor;
}

export class SocketSession {
  log: FastifyBaseLogger;
  private readonly guard: ConnectionGuard;
  private strikes = 0;
  private closing = false;
  /** The TCP socket under the WebSocket, corked while one turn of the event loop writes. */
  private readonly tcp: { cork(): void; uncork(): void } | undefined;
  private corked = false;

  /** `connId` is the connection's id at the authority (the adapter opened it with its own sink). */
  constructor(
    private readonly socket: WebSocket,
    private readonly deps: SocketDeps,
    readonly connId: ConnId,
    log: FastifyBaseLogger,
  ) {
    this.log = log;
    this.tcp = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    const { config } = deps;
    this.guard = new ConnectionGuard(config, deps.clock.now(), () => this.sendError('HELLO_TIMEOUT', `no hello within ${config.helloTimeoutMs} ms`));
    deps.liveness.add(socket);
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
  }

  /** The core accepted a hello on this connection: the hello deadline stops. */
  joined(): void {
    this.guard.joined();
  }

  /**
   * A frame arrived: its text to decode, or null when it was dealt with here
   * (the connection is closing, a rate or size limit, a binary frame).
   */
  admit(data: RawData, isBinary: boolean): string | null {
    const { metrics, clock } = this.deps;
    this.deps.liveness.sawTraffic(this.socket);
    if (this.closing) {
      metrics.frames.inc({ result: 'ignored' });
      return null;
    }
    const refusal = this.guard.admit(data, clock.now());
    if (refusal !== null) {
      metrics.frames.inc({ result: refusal.result });
      if (refusal.closeCode === null) {
        this.strike(refusal.code, refusal.message);
      } else {
        this.sendError(refusal.code, refusal.message);
        this.closeAfter(refusal.closeCode, refusal.result);
      }
      return null;
    }
    if (isBinary) {
      metrics.frames.inc({ result: 'bad' });
      this.strike('BAD_MESSAGE', 'binary frames are not accepted; send JSON text frames');
      return null;
    }
    return rawToString(data);
  }

  /** The admitted frame was (`ok`) or was not a valid frame of the protocol. */
  decoded(ok: boolean): void {
    this.deps.metrics.frames.inc({ result: ok ? 'ok' : 'bad' });
    // A bad frame larger than any but a hello may be gets no second try: the connection ends (connection-guard.ts).
    if (!ok && this.guard.lastFrameWasBulky && !this.closing) this.closeAfter(closeCodes.policyViolation, 'invalid oversized first frame');
  }

  /** A bug while handling a frame: logged whole, `INTERNAL` for this connection only. */
  failed(err: unknown): void {
    this.log.error({ err }, 'unexpected error handling a frame');
    this.sendError('INTERNAL', 'internal error; see the authority log');
  }

  /** The socket closed: liveness, the hello deadline and the authority's sink let go of it. */
  closed(): void {
    this.deps.liveness.remove(this.socket);
    this.guard.closed();
    this.deps.authority.closeConnection(this.connId);
  }

  /** Sends text now (the adapter's sink renders effects with it), cutting the peer off if it stopped reading. */
  write(text: string): void {
    const socket = this.socket;
    if (socket.readyState !== socket.OPEN) return;
    this.cork();
    socket.send(text);
    if (socket.bufferedAmount > this.deps.config.maxBufferedBytes) {
      this.log.warn({ bufferedBytes: socket.bufferedAmount }, 'peer stopped reading; cutting it off');
      socket.terminate();
    }
  }

  /**
   * Frames written in one turn of the event loop (one commit's effects) leave in one writev:
   * the TCP socket is corked at the first write and uncorked once the turn's writes are done.
   */
  private cork(): void {
    const tcp = this.tcp;
    if (this.corked || tcp === undefined) return;
    this.corked = true;
    tcp.cork();
    process.nextTick(() => {
      this.corked = false;
      tcp.uncork();
    });
  }

  /** An error frame (and its registry close code) behind everything already queued; the adapter's sink renders it. */
  sendError(code: ErrorCode, message: string): void {
    this.deps.authority.enqueue({ kind: 'refuse', connId: this.connId, refusal: { kind: 'frame', code, message: capText(message) } });
  }

  /** A bad frame or a flood: an error frame, or after `maxStrikes` a close with 1008. */
  strike(code: ErrorCode, message: string): void {
    this.strikes++;
    if (this.strikes <= this.deps.config.maxStrikes) return this.sendError(code, message);
    if (!this.closing) {
      this.log.warn({ strikes: this.strikes, code }, 'closing abusive connection');
      this.closeAfter(closeCodes.policyViolation, `too many bad frames (${code})`);
    }
  }

  /** Stops reading frames and closes with `code` once queued frames are out. */
  closeAfter(code: number, reason: string): void {
    this.closing = true;
    this.deps.authority.enqueue({ kind: 'close', connId: this.connId, code, reason });
  }

  /** Stops reading frames and closes now (a close the core's effects call for). */
  closeNow(code: number, reason: string): void {
    this.closing = true;
    const socket = this.socket;
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
  }
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/**
 * Ping/pong liveness for every connection on one timer: a connection that
 * neither answered the last ping nor sent anything since is terminated, so a
 * half-open peer is found within two ping intervals.
 */
export class LivenessMonitor {
  private readonly alive = new Map<WebSocket, boolean>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  add(socket: WebSocket): void {
    this.alive.set(socket, true);
    socket.on('pong', () => this.sawTraffic(socket));
  }

  sawTraffic(socket: WebSocket): void {
    if (this.alive.has(socket)) this.alive.set(socket, true);
  }

  remove(socket: WebSocket): void {
    this.alive.delete(socket);
  }

  private sweep(): void {
    for (const [socket, alive] of this.alive) {
      if (!alive) {
        this.alive.delete(socket);
        socket.terminate();
        continue;
      }
      this.alive.set(socket, false);
      try {
        socket.ping();
      } catch {
        // the socket is closing; its close event cleans up
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
