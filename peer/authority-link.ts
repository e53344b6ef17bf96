import WebSocket, { type RawData } from 'ws';
import { peerMessageSchema, type PeerMessage } from '../shared/protocol.js';
import { parseRetryAfterMs } from './server-list.js';

/**
 * One WebSocket connection to the authority: Bearer token on the upgrade,
 * a handshake timeout, text frames in and validated frames out, and a
 * liveness watchdog (the authority pings every `pingIntervalMs`; a link that
 * hears nothing for 2.5 intervals is presumed half-open and terminated).
 * `ended` is called exactly once, however the link ends.
 */
export interface LinkEnd {
  /** WebSocket close code (1006 when the TCP connection just dropped or never opened). */
  readonly code: number;
  readonly reason: string;
  /** The HTTP status when the upgrade was refused (e.g. 401). */
  readonly httpStatus: number | null;
  /** What the authority said with a refused upgrade (its error message, or the start of the body). */
  readonly httpMessage?: string | null;
  /** The socket error, if any (e.g. `connect ECONNREFUSED 127.0.0.1:8080`). */
  readonly error: string | null;
  /** `Retry-After` of a refused upgrade, in ms (a standby authority sends it with its 503); null when absent. */
  readonly retryAfterMs?: number | null;
}

export interface LinkHandlers {
  opened(): void;
  frame(text: string): void;
  /** A binary frame: protocol v1 never sends one. */
  binaryFrame(): void;
  ended(end: LinkEnd): void;
}

/** Frames larger than this from the authority close the link (a `complete` for 2000 steps is far below). */
const maxPayloadBytes = 16 * 1024 * 1024;
/** How long a graceful close may take before the TCP connection is cut. */
const closeTimeoutMs = 2_000;

export class AuthorityLink {
  private readonly socket: WebSocket;
  private httpStatus: number | null = null;
  private httpMessage: string | null = null;
  private retryAfterMs: number | null = null;
  private error: string | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private silenceLimitMs = 0;
  private lastHeardMs = Date.now();
  private endedFlag = false;
  private readonly endWaiters: (() => void)[] = [];

  constructor(url: string, token: string | null, handshakeTimeoutMs: number, private readonly handlers: LinkHandlers) {
    this.socket = new WebSocket(url, {
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
      handshakeTimeout: Math.max(1, Math.round(handshakeTimeoutMs)),
      perMessageDeflate: false,
      maxPayload: maxPayloadBytes,
      followRedirects: false,
    });
    this.socket.on('open', () => {
      this.heard();
      handlers.opened();
    });
    this.socket.on('message', (data: RawData, isBinary: boolean) => {
      this.heard();
      if (isBinary) handlers.binaryFrame();
      else handlers.frame(rawToString(data));
    });
    this.socket.on('ping', () => this.heard());
    this.socket.on('pong', () => this.heard());
    this.socket.on('error', (err) => {
      this.error ??= err.message;
    });
    this.socket.on('unexpected-response', (_req, res) => {
      this.httpStatus = res.statusCode ?? null;
      const retryAfter = res.headers['retry-after'];
      this.retryAfterMs = parseRetryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now());
      // Keep what the authority said (e.g. which path is right), up to 2 KiB, then drop the connection.
      let body = '';
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(cut);
        this.httpMessage = errorMessageOf(body);
        this.socket.terminate();
      };
      const cut = setTimeout(finish, 1_000);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > 2048) res.destroy();
      });
      res.once('end', finish);
      res.once('close', finish);
      res.once('error', finish);
    });
    this.socket.on('close', (code: number, reason: Buffer) => {
      this.stopWatchdog();
      this.endedFlag = true;
      for (const w of this.endWaiters.splice(0)) w();
      handlers.ended({ code, reason: reason.toString('utf8'), httpStatus: this.httpStatus, httpMessage: this.httpMessage, error: this.error, retryAfterMs: this.retryAfterMs });
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends one frame, checked against the protocol schema first (a bad frame is a peer bug). */
  send(message: PeerMessage): boolean {
    const checked = peerMessageSchema.safeParse(message);
    if (!checked.success) throw new Error(`peer bug: invalid ${message.type} frame: ${checked.error.message}`);
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(checked.data));
    return true;
  }

  /** Starts the liveness watchdog once the authority has said how often it pings. */
  watch(pingIntervalMs: number): void {
    this.stopWatchdog();
    if (pingIntervalMs <= 0) return;
    this.silenceLimitMs = Math.round(pingIntervalMs * 2.5);
    this.heard();
    const tick = Math.max(100, Math.round(pingIntervalMs / 2));
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeardMs > this.silenceLimitMs) {
        this.error ??= `nothing heard from the authority for ${this.silenceLimitMs} ms`;
        this.terminate();
      }
    }, tick);
    this.watchdog.unref();
  }

  /** Closes gracefully (close frame), cutting the connection if that takes too long; resolves once closed. */
  close(code = 1000, reason = ''): Promise<void> {
    if (this.endedFlag) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.endWaiters.push(resolve));
    if (this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.terminate();
    } else {
      this.socket.close(code, reason);
      const cut = setTimeout(() => this.terminate(), closeTimeoutMs);
      void done.then(() => clearTimeout(cut));
    }
    return done;
  }

  /** Drops the connection at once. */
  terminate(): void {
    if (!this.endedFlag) this.socket.terminate();
  }

  private heard(): void {
    this.lastHeardMs = Date.now();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }
}

/** `{"error":{"message":"..."}}` -> its message; other bodies: their first line, printable, capped. */
function errorMessageOf(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown }; message?: unknown };
    const message = parsed.error?.message ?? parsed.message;
    if (typeof message === 'string') return message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 300);
  } catch {
    // not JSON
  }
  const first = body.split('\n')[0]?.replace(/[^\x20-\x7e]/g, ' ').trim().slice(0, 200) ?? '';
  return first === '' ? null : first;
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
