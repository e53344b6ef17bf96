import type { FastifyBaseLogger } from 'fastify';
import { WebSocket, type RawData } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import type { ErrorCode } from '../../shared/error-codes.js';
import type { Authority, ConnectionSink } from '../authority.js';
import type { ServerConfig } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { ConnId, Effect } from '../core/effects.js';
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
 * A connection is one object: the adapter's class (peer-socket.ts,
 * task-director-socket.ts) extends this one, is the connection's sink at the
 * authority, and gets the socket's events through listeners shared by every
 * socket (they find the connection on the socket, {@link ServerSocket}). No
 * closure, timer, logger or map entry is made per connection while it idles:
 * an idle peer's memory is issue #17's item 6. Each adapter reads top to bottom:
 *
 *   frame  -> onText(text) after the limits here (null: refused here) -> decode -> authority.submit
 *             -> the metrics and the oversized-first-frame rule
 *   effect -> deliver(effect) renders its frames -> write
 *   close  -> onClosed() -> authority.submit({ kind: 'disconnected' })
 */
export interface SocketDeps {
  readonly authority: Authority;
  readonly metrics: Metrics;
  readonly config: ServerConfig;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
  readonly liveness: LivenessMonitor;
}

/**
 * The WebSocket class the server's `ws` makes for each upgrade
 * (`@fastify/websocket`'s `options.WebSocket`): a field for the connection it
 * serves, so the socket's listeners are functions shared by every socket.
 */
export class ServerSocket extends WebSocket {
  session: SocketSession | null = null;
}

export abstract class SocketSession extends ConnectionGuard implements ConnectionSink {
  /** The connection's id at the authority (this object is its sink there). */
  readonly connId: ConnId;
  private strikes = 0;
  private closing = false;
  private corked = false;
  /** Liveness: whether the peer answered the last ping or sent anything since (see {@link LivenessMonitor}). */
  alive = true;
  /** The monitor's list of connections (intrusive: no map entry per connection). */
  liveNext: SocketSession | null = null;
  livePrev: SocketSession | null = null;
  /** Made when the connection first logs; dropped when its bindings change. */
  private logger: FastifyBaseLogger | null = null;

  constructor(
    protected readonly socket: ServerSocket,
    protected readonly deps: SocketDeps,
  ) {
    super(deps.config, deps.clock.now());
    this.connId = deps.authority.openConnection(this);
    socket.session = this;
    deps.liveness.add(this);
    socket.on('message', onSocketMessage);
    socket.on('close', onSocketClose);
    socket.on('pong', onSocketPong);
    socket.on('error', onSocketError);
  }

  /** Renders one of the core's effects for this connection (the authority calls it after the commit). */
  abstract deliver(effect: Effect): void;

  /** One admitted text frame; whether it was a valid frame of the protocol. */
  protected abstract onText(text: string): boolean;

  /** The fields of this connection's log lines (connId, and what the peer said it is). */
  protected abstract logBindings(): Record<string, unknown>;

  /** The socket closed; the adapter tells the core. */
  protected abstract onClosed(): void;

  /** The connection's child logger, made on first use (most connections never log). */
  get log(): FastifyBaseLogger {
    return (this.logger ??= this.deps.log.child(this.logBindings()));
  }

  /** The log bindings changed (the peer said who it is): the next line gets the new ones. */
  protected rebindLog(): void {
    this.logger = null;
  }

  /** The authority closes the connection (its sink's `close`). */
  close(code: number, reason: string): void {
    this.closeNow(code, reason);
  }

  protected override helloTimedOut(): void {
    this.sendError('HELLO_TIMEOUT', `no hello within ${this.config.helloTimeoutMs} ms`);
  }

  /** The core accepted a hello on this connection: the hello deadline stops. */
  joined(): void {
    this.stopHelloDeadline();
  }

  /** A frame from the socket: the limits, then the adapter's decoding; a bug is `INTERNAL` for this connection only. */
  frame(data: RawData, isBinary: boolean): void {
    try {
      const text = this.admitFrame(data, isBinary);
      if (text !== null) this.decoded(this.onText(text));
    } catch (err) {
      this.failed(err);
    }
  }

  /**
   * A frame arrived: its text to decode, or null when it was dealt with here
   * (the connection is closing, a rate or size limit, a binary frame).
   */
  private admitFrame(data: RawData, isBinary: boolean): string | null {
    const counters = this.deps.metrics.framesByResult;
    this.alive = true;
    if (this.closing) {
      counters.ignored.inc();
      return null;
    }
    const refusal = this.admit(data, this.deps.clock.now());
    if (refusal !== null) {
      counters[refusal.result].inc();
      if (refusal.closeCode === null) {
        this.strike(refusal.code, refusal.message);
      } else {
        this.sendError(refusal.code, refusal.message);
        this.closeAfter(refusal.closeCode, refusal.result);
      }
      return null;
    }
    if (isBinary) {
      counters.bad.inc();
      this.strike('BAD_MESSAGE', 'binary frames are not accepted; send JSON text frames');
      return null;
    }
    return rawToString(data);
  }

  /** The admitted frame was (`ok`) or was not a valid frame of the protocol. */
  private decoded(ok: boolean): void {
    const counters = this.deps.metrics.framesByResult;
    (ok ? counters.ok : counters.bad).inc();
    // A bad frame larger than any but a hello may be gets no second try: the connection ends (connection-guard.ts).
    if (!ok && this.lastFrameWasBulky && !this.closing) this.closeAfter(closeCodes.policyViolation, 'invalid oversized first frame');
  }

  /** A bug while handling a frame: logged whole, `INTERNAL` for this connection only. */
  private failed(err: unknown): void {
    this.log.error({ err }, 'unexpected error handling a frame');
    this.sendError('INTERNAL', 'internal error; see the authority log');
  }

  /** The socket closed: liveness, the hello deadline and the authority's sink let go of it; then the adapter. */
  closed(): void {
    this.deps.liveness.remove(this);
    this.stopHelloDeadline();
    this.deps.authority.closeConnection(this.connId);
    this.onClosed();
  }

  /** Sends text now (the adapter renders effects with it), cutting the peer off if it stopped reading. */
  write(text: string): void {
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return;
    this.cork();
    socket.send(text);
    if (socket.bufferedAmount > this.config.maxBufferedBytes) {
      this.log.warn({ bufferedBytes: socket.bufferedAmount }, 'peer stopped reading; cutting it off');
      socket.terminate();
    }
  }

  /**
   * Frames written in one turn of the event loop (one commit's effects) leave in one writev:
   * the TCP socket is corked at the first write and uncorked once the turn's writes are done,
   * every socket corked in the turn on one process.nextTick (not one each: a commit writes to
   * every connection it granted work to).
   */
  private cork(): void {
    if (this.corked) return;
    const tcp = (this.socket as unknown as { _socket?: CorkableSocket })._socket;
    if (tcp === undefined) return;
    this.corked = true;
    tcp.cork();
    corkedSockets.push(tcp);
    if (corkedSessions.push(this) === 1) process.nextTick(uncorkTurn);
  }

  /** The turn's writes are done: they leave together. */
  uncorked(tcp: CorkableSocket): void {
    this.corked = false;
    tcp.uncork();
  }

  /** An error frame (and its registry close code) behind everything already queued; the adapter renders it. */
  sendError(code: ErrorCode, message: string): void {
    this.deps.authority.enqueue({ kind: 'refuse', connId: this.connId, refusal: { kind: 'frame', code, message: capText(message) } });
  }

  /** A bad frame or a flood: an error frame, or after `maxStrikes` a close with 1008. */
  strike(code: ErrorCode, message: string): void {
    this.strikes++;
    if (this.strikes <= this.config.maxStrikes) return this.sendError(code, message);
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
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(code, reason);
  }

  /** Liveness found the peer silent for two ping intervals. */
  terminate(): void {
    this.socket.terminate();
  }

  /** Liveness asks the peer to answer. */
  ping(): void {
    try {
      this.socket.ping();
    } catch {
      // the socket is closing; its close event cleans up
    }
  }

  /** `ws` reported a protocol violation by the peer: logged, and the socket ends (as `@fastify/websocket` did). */
  socketError(err: Error): void {
    this.log.debug({ err }, 'socket error');
    this.socket.terminate();
  }
}

interface CorkableSocket {
  cork(): void;
  uncork(): void;
}

/** The sessions corked in this turn and their TCP sockets, uncorked together by {@link uncorkTurn}. */
let corkedSessions: SocketSession[] = [];
let corkedSockets: CorkableSocket[] = [];

function uncorkTurn(): void {
  const sessions = corkedSessions;
  const sockets = corkedSockets;
  corkedSessions = [];
  corkedSockets = [];
  for (let i = 0; i < sessions.length; i++) sessions[i]!.uncorked(sockets[i]!);
}

// The socket's listeners: one function each for every socket (`this` is the socket, a ServerSocket).
function sessionOf(socket: WebSocket): SocketSession | null {
  return (socket as ServerSocket).session;
}
function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  sessionOf(this)?.frame(data, isBinary);
}
function onSocketClose(this: WebSocket): void {
  sessionOf(this)?.closed();
}
function onSocketPong(this: WebSocket): void {
  const session = sessionOf(this);
  if (session) session.alive = true;
}
function onSocketError(this: WebSocket, err: Error): void {
  const session = sessionOf(this);
  if (session) session.socketError(err);
  else this.terminate();
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/**
 * Ping/pong liveness for every connection on one timer: a connection that
 * neither answered the last ping nor sent anything since is terminated, so a
 * half-open peer is found within two ping intervals. The connections form a
 * list through their own fields (no map entry per connection).
 */
export class LivenessMonitor {
  private head: SocketSession | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  add(session: SocketSession): void {
    session.alive = true;
    session.livePrev = null;
    session.liveNext = this.head;
    if (this.head !== null) this.head.livePrev = session;
    this.head = session;
  }

  remove(session: SocketSession): void {
    if (session.livePrev === null && this.head !== session) return; // not listed (already removed)
    if (session.livePrev !== null) session.livePrev.liveNext = session.liveNext;
    else this.head = session.liveNext;
    if (session.liveNext !== null) session.liveNext.livePrev = session.livePrev;
    session.liveNext = null;
    session.livePrev = null;
  }

  private sweep(): void {
    let session = this.head;
    while (session !== null) {
      const next = session.liveNext;
      if (!session.alive) {
        this.remove(session);
        session.terminate();
      } else {
        session.alive = false;
        session.ping();
      }
      session = next;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
