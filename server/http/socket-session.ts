import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import type { ErrorCode } from '../../shared/error-codes.js';
import type { Authority } from '../authority.js';
import type { ServerConfig } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { ConnId, Effect } from '../core/effects.js';
import type { Metrics } from './metrics.js';
import { capText } from '../../shared/text-caps.js';
import { ConnectionGuard } from './connection-guard.js';

/**
 * What every peer connection shares, whatever its wire protocol (v1 on
 * `/v1/peer`, the original Task Director format on `/ws/api/...`): a connection
 * id at the authority, a token bucket, strikes for bad frames ending in close
 * 1008, error frames that never reach the core (so they cannot change state),
 * the slow-reader cutoff, liveness, and a try/catch that turns a bug into
 * `INTERNAL` for this connection only.
 */
export interface SocketDeps {
  readonly authority: Authority;
  readonly metrics: Metrics;
  readonly config: ServerConfig;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
  readonly liveness: LivenessMonitor;
}

export interface SocketSession {
  readonly connId: ConnId;
  log: FastifyBaseLogger;
  /** Sends text now (used by `deliver`), cutting the peer off if it stopped reading. */
  write(text: string): void;
  /** An error frame (and its registry close code) behind everything already queued. */
  sendError(code: ErrorCode, message: string): void;
  /** A bad frame or a flood: an error frame, or after `maxStrikes` a close with 1008. */
  strike(code: ErrorCode, message: string): void;
  /** Stops reading frames and closes with `code` once queued frames are out. */
  closeAfter(code: number, reason: string): void;
  /** Stops reading frames and closes now (a close the core's effects call for). */
  closeNow(code: number, reason: string): void;
}

export interface SocketProtocol {
  /** One core effect for this connection, rendered in this protocol's wire format (or nothing). */
  deliver(session: SocketSession, effect: Effect): void;
  /** One text frame; returns whether it was a valid frame of the protocol (for metrics). */
  onText(session: SocketSession, text: string): boolean;
  /** The socket closed. */
  onClose(session: SocketSession): void;
}

export function openSocketSession(socket: WebSocket, deps: SocketDeps, protocol: SocketProtocol, log: FastifyBaseLogger): SocketSession {
  const { authority, config, clock, metrics } = deps;
  // Rate and size limits before decoding, and the hello deadline (connection-guard.ts).
  const guard = new ConnectionGuard(config, clock.now(), () => session.sendError('HELLO_TIMEOUT', `no hello within ${config.helloTimeoutMs} ms`));
  let strikes = 0;
  let closing = false;

  // Frames written in one turn of the event loop (one commit's effects) leave in one writev:
  // the TCP socket is corked at the first write and uncorked once the turn's writes are done.
  const tcp = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
  let corked = false;
  const cork = (): void => {
    if (corked || tcp === undefined) return;
    corked = true;
    tcp.cork();
    process.nextTick(() => {
      corked = false;
      tcp.uncork();
    });
  };

  const session: SocketSession = {
    connId: 0,
    log,
    write(text) {
      if (socket.readyState !== socket.OPEN) return;
      cork();
      socket.send(text);
      if (socket.bufferedAmount > config.maxBufferedBytes) {
        session.log.warn({ bufferedBytes: socket.bufferedAmount }, 'peer stopped reading; cutting it off');
        socket.terminate();
      }
    },
    sendError(code, message) {
      // The protocol renders it (and the close its code calls for), behind everything already queued.
      authority.enqueue({ kind: 'refuse', connId: session.connId, refusal: { kind: 'frame', code, message: capText(message) } });
    },
    strike(code, message) {
      strikes++;
      if (strikes <= config.maxStrikes) return session.sendError(code, message);
      if (!closing) {
        session.log.warn({ strikes, code }, 'closing abusive connection');
        session.closeAfter(closeCodes.policyViolation, `too many bad frames (${code})`);
      }
    },
    closeAfter(code, reason) {
      closing = true;
      authority.enqueue({ kind: 'close', connId: session.connId, code, reason });
    },
    closeNow(code, reason) {
      closing = true;
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
    },
  };

  (session as { connId: ConnId }).connId = authority.openConnection({
    deliver: (effect) => {
      if (effect.kind === 'joined') guard.joined();
      protocol.deliver(session, effect);
    },
    close: (code, reason) => session.closeNow(code, reason),
  });
  deps.liveness.add(socket);

  socket.on('message', (data: RawData, isBinary: boolean) => {
    deps.liveness.sawTraffic(socket);
    if (closing) return metrics.frames.inc({ result: 'ignored' });
    try {
      const refusal = guard.admit(data, clock.now());
      if (refusal !== null) {
        metrics.frames.inc({ result: refusal.result });
        if (refusal.closeCode === null) return session.strike(refusal.code, refusal.message);
        session.sendError(refusal.code, refusal.message);
        return session.closeAfter(refusal.closeCode, refusal.result);
      }
      if (isBinary) {
        metrics.frames.inc({ result: 'bad' });
        return session.strike('BAD_MESSAGE', 'binary frames are not accepted; send JSON text frames');
      }
      const ok = protocol.onText(session, rawToString(data));
      metrics.frames.inc({ result: ok ? 'ok' : 'bad' });
      // A bad frame larger than any but a hello may be gets no second try: the connection ends (connection-guard.ts).
      if (!ok && guard.lastFrameWasBulky && !closing) session.closeAfter(closeCodes.policyViolation, 'invalid oversized first frame');
    } catch (err) {
      session.log.error({ err }, 'unexpected error handling a frame');
      session.sendError('INTERNAL', 'internal error; see the authority log');
    }
  });

  socket.on('error', (err) => session.log.debug({ err }, 'socket error'));

  socket.on('close', () => {
    deps.liveness.remove(socket);
    guard.closed();
    authority.closeConnection(session.connId);
    protocol.onClose(session);
  });
  return session;
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
