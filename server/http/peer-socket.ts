import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import { errorCodes, type ErrorCode } from '../../shared/error-codes.js';
import { decodePeerMessage } from '../../shared/frames.js';
import { protocolVersion, type Hello, type PeerMessage, type ServerMessage } from '../../shared/protocol.js';
import type { Authority } from '../authority.js';
import type { ServerConfig } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { ConnId } from '../core/core-types.js';
import { hashToken } from './auth.js';
import { checkHello, freshToken } from './hello-input.js';
import type { Metrics } from './metrics.js';
import { TokenBucket } from './rate-limiter.js';

/**
 * One protocol-v1 connection on `GET /v1/peer`: frames in, zod-validated, turned
 * into core inputs; error frames for bad input (which never reach the core, so
 * they cannot change state); a token bucket per connection; strikes for bad
 * frames and floods end in close 1008. Liveness (ping/pong) is run by
 * {@link LivenessMonitor} for all connections.
 */
export interface PeerSocketDeps {
  readonly authority: Authority;
  readonly metrics: Metrics;
  readonly config: ServerConfig;
  readonly clock: Clock;
  readonly log: FastifyBaseLogger;
  readonly liveness: LivenessMonitor;
}

export function handlePeerSocket(socket: WebSocket, deps: PeerSocketDeps): void {
  const { authority, config, clock } = deps;
  let peerId: string | null = null;
  let strikes = 0;
  let closing = false;
  const bucket = new TokenBucket(config.rateLimitPerSec, config.rateLimitBurst, clock.now());
  let log = deps.log;

  const connId: ConnId = authority.openConnection({
    send(_message: ServerMessage, json: () => string) {
      if (socket.readyState !== socket.OPEN) return;
      socket.send(json());
      if (socket.bufferedAmount > config.maxBufferedBytes) {
        log.warn({ bufferedBytes: socket.bufferedAmount }, 'peer stopped reading; cutting it off');
        socket.terminate();
      }
    },
    close(code: number, reason: string) {
      closing = true;
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
    },
  });
  deps.liveness.add(socket);

  const sendError = (code: ErrorCode, message: string): void => {
    authority.enqueue({ kind: 'send', connId, message: { type: 'error', code, message, retryable: errorCodes[code].retryable } });
    const closeCode = errorCodes[code].closeCode;
    if (closeCode !== null) authority.enqueue({ kind: 'close', connId, code: closeCode, reason: code });
  };

  /** A bad frame or a flood: after `maxStrikes` the connection is closed with 1008. */
  const strike = (code: ErrorCode, message: string): void => {
    strikes++;
    if (strikes > config.maxStrikes) {
      if (!closing) {
        closing = true;
        log.warn({ strikes, code }, 'closing abusive connection');
        authority.enqueue({ kind: 'close', connId, code: closeCodes.policyViolation, reason: `too many bad frames (${code})` });
      }
      return;
    }
    sendError(code, message);
  };

  const onHello = (hello: Hello): void => {
    if (peerId !== null) return sendError('ALREADY_JOINED', `this connection already joined as ${peerId}`);
    if (authority.isDraining) return sendError('SHUTTING_DOWN', 'the authority is shutting down; reconnect with your resume token');
    if (hello.protocol !== protocolVersion) {
      return sendError('UNSUPPORTED_PROTOCOL', `this authority speaks protocol ${protocolVersion}; the peer asked for ${hello.protocol}`);
    }
    const checked = checkHello(hello);
    if (!checked.ok) return sendError('SCHEMA_MISMATCH', checked.message);
    peerId = hello.peerId;
    log = deps.log.child({ peerId, connId });
    authority.submit({
      kind: 'hello',
      connId,
      peerId: hello.peerId,
      registration: checked.registration,
      schema: checked.schema,
      digest: checked.digest,
      presentedToken: hello.resumeToken ? { token: hello.resumeToken, hash: hashToken(hello.resumeToken) } : null,
      freshToken: freshToken(),
      currentStep: hello.currentStep ?? null,
      resumable: true,
    });
  };

  const onMessage = (message: PeerMessage): void => {
    switch (message.type) {
      case 'hello':
        onHello(message);
        return;
      case 'step.finished':
        if (peerId === null) return sendError('NOT_JOINED', 'send hello before step.finished');
        authority.submit({
          kind: 'finished',
          connId,
          peerId,
          leaseId: message.leaseId,
          stepId: message.stepId,
          ok: message.ok,
          exitCode: message.exitCode,
          durationMs: message.durationMs,
          logTail: message.logTail ?? null,
        });
        return;
      case 'bye':
        if (peerId !== null) authority.submit({ kind: 'bye', connId, peerId });
        authority.enqueue({ kind: 'close', connId, code: closeCodes.normal, reason: 'bye' });
        return;
    }
  };

  socket.on('message', (data: RawData, isBinary: boolean) => {
    deps.liveness.sawTraffic(socket);
    const frames = deps.metrics.frames;
    if (closing) return frames.inc({ result: 'ignored' });
    try {
      if (!bucket.take(clock.now())) {
        frames.inc({ result: 'rate_limited' });
        return strike('RATE_LIMITED', `more than ${config.rateLimitPerSec} frames per second; slow down`);
      }
      const decoded = isBinary ? null : decodePeerMessage(rawToString(data));
      if (!decoded?.ok) {
        frames.inc({ result: 'bad' });
        return strike('BAD_MESSAGE', decoded ? decoded.problem : 'binary frames are not accepted; send JSON text frames');
      }
      frames.inc({ result: 'ok' });
      onMessage(decoded.message);
    } catch (err) {
      log.error({ err }, 'unexpected error handling a frame');
      sendError('INTERNAL', 'internal error; see the authority log');
    }
  });

  socket.on('error', (err) => log.debug({ err }, 'socket error'));

  socket.on('close', () => {
    deps.liveness.remove(socket);
    authority.closeConnection(connId);
    if (peerId !== null) authority.submit({ kind: 'disconnected', connId, peerId });
  });
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
