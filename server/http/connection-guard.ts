import type { RawData } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import type { ErrorCode } from '../../shared/error-codes.js';
import { limits } from '../../shared/limits.js';
import type { ServerConfig } from '../config.js';
import { refilledTokens } from './rate-limiter.js';

/**
 * Per-connection limits applied before a frame is even decoded:
 *
 * - a frame rate and a byte rate (token buckets; the byte burst is the largest
 *   frame, so a hello of `--max-payload-bytes` passes once);
 * - only a connection's first frame (its hello or INIT) may be larger than
 *   `limits.maxFrameBytes`, or the hello that answers `UNKNOWN_SCHEMA` (once:
 *   a digest-first hello is small, and the full one follows it); a later one
 *   closes the connection with 1009 unread, as `ws` does for frames over the
 *   payload limit, and a large frame that is not a valid hello closes it too
 *   (1008), so a connection costs at most one large frame;
 * - a hello deadline: a connection that has not joined within
 *   `helloTimeoutMs` gets `HELLO_TIMEOUT` and is closed (1008).
 *
 * Connection states: waiting-for-hello -> joined -> closed (or
 * waiting-for-hello -> closed); the deadline runs only while waiting.
 *
 * Every peer connection is one object: the adapters' connection classes
 * extend SocketSession (socket-session.ts), which extends this class, so the
 * buckets are fields here rather than objects of their own (issue #17: memory
 * per idle peer). A guard made on its own (tests) ignores the deadline.
 */
export interface FrameRefusal {
  /** The `taskshard_frames_received_total` result label. */
  readonly result: 'rate_limited' | 'too_big';
  readonly code: ErrorCode;
  readonly message: string;
  /** Close at once with this code; null = a strike (an error frame, then 1008 after too many). */
  readonly closeCode: number | null;
}

export class ConnectionGuard {
  /** The two token buckets (frames, bytes), refilled together on each frame. */
  private frameTokens: number;
  private byteTokens: number;
  private tokensAtMs: number;
  /** Whether the next frame may be larger than `limits.maxFrameBytes` (the first, or a hello asked for again). */
  private bulkyAllowed = true;
  /** Whether a frame larger than `limits.maxFrameBytes` was admitted on this connection (at most one is). */
  private bulkyAdmitted = false;
  /** Whether {@link allowBulkyFrame} was used (once per connection). */
  private bulkyOffered = false;
  /** Whether the frame last admitted was larger than `limits.maxFrameBytes` (only a first frame can be). */
  lastFrameWasBulky = false;
  private helloTimer: NodeJS.Timeout | null;

  constructor(
    protected readonly config: ServerConfig,
    nowMs: number,
  ) {
    this.frameTokens = config.rateLimitBurst;
    this.byteTokens = byteBurst(config);
    this.tokensAtMs = nowMs;
    this.helloTimer = setTimeout(() => {
      this.helloTimer = null;
      this.helloTimedOut();
    }, config.helloTimeoutMs);
    this.helloTimer.unref();
  }

  /** No hello within `helloTimeoutMs`: the connection class answers `HELLO_TIMEOUT`. */
  protected helloTimedOut(): void {}

  /** Null when the frame may be decoded; otherwise why not. */
  admit(data: RawData, nowMs: number): FrameRefusal | null {
    const bytes = byteLength(data);
    const bulkyAllowed = this.bulkyAllowed;
    this.bulkyAllowed = false;
    this.lastFrameWasBulky = bytes > limits.maxFrameBytes;
    if (this.lastFrameWasBulky) {
      if (!bulkyAllowed) {
        return {
          result: 'too_big',
          code: 'BAD_MESSAGE',
          message: `a frame of ${bytes} bytes; only a connection's first frame (its hello) may be larger than ${limits.maxFrameBytes} bytes`,
          closeCode: closeCodes.messageTooBig,
        };
      }
      this.bulkyAdmitted = true;
    }
    // Both buckets are charged (a refused frame still cost its bytes to receive).
    const config = this.config;
    const elapsedMs = nowMs - this.tokensAtMs;
    this.tokensAtMs = nowMs;
    this.frameTokens = refilledTokens(this.frameTokens, elapsedMs, config.rateLimitPerSec, config.rateLimitBurst);
    this.byteTokens = refilledTokens(this.byteTokens, elapsedMs, config.rateLimitBytesPerSec, byteBurst(config));
    const frameOk = this.frameTokens >= 1;
    if (frameOk) this.frameTokens -= 1;
    const bytesOk = this.byteTokens >= bytes;
    if (bytesOk) this.byteTokens -= bytes;
    if (!frameOk) return { result: 'rate_limited', code: 'RATE_LIMITED', message: `more than ${this.config.rateLimitPerSec} frames per second; slow down`, closeCode: null };
    if (!bytesOk) return { result: 'rate_limited', code: 'RATE_LIMITED', message: `more than ${this.config.rateLimitBytesPerSec} bytes per second; slow down`, closeCode: null };
    return null;
  }

  /**
   * The authority asked for the hello again with its schema (`UNKNOWN_SCHEMA`): the next frame may be
   * as large as a first frame, and the byte bucket is full again for it, once per connection and only
   * if no large frame came before (a connection still costs at most one).
   */
  protected allowBulkyFrame(): void {
    if (this.bulkyAdmitted || this.bulkyOffered) return;
    this.bulkyOffered = true;
    this.bulkyAllowed = true;
    this.byteTokens = byteBurst(this.config);
  }

  /** The connection joined (the core welcomed it) or closed: the hello deadline no longer applies. */
  stopHelloDeadline(): void {
    if (this.helloTimer !== null) clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }
}

/** The byte bucket's burst is the largest frame, so a hello of `--max-payload-bytes` passes once. */
function byteBurst(config: ServerConfig): number {
  return Math.max(config.maxPayloadBytes, config.rateLimitBytesPerSec);
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, chunk) => sum + chunk.length, 0);
  return data.byteLength;
}
