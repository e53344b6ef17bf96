import { limits } from '../../shared/limits.js';
import type { ServerMessage, SucceededStep } from '../../shared/protocol.js';

/** How long a held success may wait for the peer's next assign/wait/complete before it goes out alone. */
export const coalesceWindowMs = 1_000;

/**
 * The entry a success adds to each member's held list, made once per rendered frame: a
 * success in a cohort of 200 reaches 200 connections (frames are rendered once per
 * effect, v1-frames.ts), and one object each was most of this file's cost. Shared
 * entries are never changed (frozen).
 */
const succeededSteps = new WeakMap<ServerMessage, SucceededStep>();
function succeededStepOf(message: Extract<ServerMessage, { type: 'step.update' }>): SucceededStep {
  let step = succeededSteps.get(message);
  if (step === undefined) {
    step = Object.freeze({ stepId: message.stepId, peerId: message.peerId, fromMemo: message.fromMemo, ...(message.durationMs === undefined ? {} : { durationMs: message.durationMs }) });
    succeededSteps.set(message, step);
  }
  return step;
}

/** An object's JSON (a frame that has no `succeeded` key) with `succeeded` added as its last key. */
export function withSucceeded(json: string, succeeded: readonly SucceededStep[]): string {
  return `${json.slice(0, -1)},"succeeded":${JSON.stringify(succeeded)}}`;
}

/**
 * Per v1 connection whose hello said `coalescedUpdates`: which frames go out
 * now and which successes wait. A peer busy building does not need to hear of
 * each step another member finished; it needs them before its next decision.
 *
 * - A `step.update` with state succeeded is held; held successes ride on the
 *   peer's next `assign`, `wait` or `complete` as `succeeded`, or go out as one
 *   `step.updates` frame after `windowMs` if none came by then. A success that
 *   makes work for a waiting peer comes with that work: the core assigns it in
 *   the same commit, so the `assign` carries it.
 * - Failures and steps pending again go out at once, behind the held successes.
 * - Any other frame goes out behind the held successes, so order is kept.
 *
 * Without `coalescedUpdates` (older peers) every frame goes out as rendered.
 */
export class UpdateCoalescer {
  private held: SucceededStep[] = [];
  private heldCohortId: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private enabled = false;

  /** `out` writes one JSON text frame (the connection itself: no closure per connection); `encode` is the shared (cached) encoding of a frame. */
  constructor(
    private readonly out: { write(text: string): void },
    private readonly encode: (message: ServerMessage) => string,
    private readonly windowMs = coalesceWindowMs,
  ) {}

  /** From the peer's hello. */
  enable(on: boolean): void {
    this.enabled = on;
  }

  /** One rendered frame for this connection. */
  deliver(message: ServerMessage): void {
    if (!this.enabled) return this.out.write(this.encode(message));
    switch (message.type) {
      case 'step.update':
        if (message.state === 'succeeded') {
          if ((this.heldCohortId !== null && this.heldCohortId !== message.cohortId) || this.held.length >= limits.maxSteps) this.flush();
          this.heldCohortId = message.cohortId;
          this.held.push(succeededStepOf(message));
          this.timer ??= setTimeout(() => this.flush(), this.windowMs).unref();
          return;
        }
        this.flush();
        return this.out.write(this.encode(message));
      case 'assign':
      case 'wait':
      case 'complete': {
        if (this.held.length === 0 || this.heldCohortId !== message.cohortId) {
          this.flush();
          return this.out.write(this.encode(message));
        }
        const succeeded = this.take();
        // A complete's shared part is encoded once per cohort (complete-encoder.ts, through `encode`);
        // an assign or wait is its own frame: its JSON with the list spliced in before the closing
        // brace is JSON.stringify({ ...message, succeeded }) without the copy of the message.
        if (message.type === 'complete') return this.out.write(this.encode({ ...message, succeeded }));
        return this.out.write(withSucceeded(this.encode(message), succeeded));
      }
      default:
        this.flush();
        return this.out.write(this.encode(message));
    }
  }

  /** The connection ended: nothing more goes out. */
  dispose(): void {
    this.clearTimer();
    this.held = [];
  }

  private flush(): void {
    if (this.held.length === 0) return;
    const cohortId = this.heldCohortId!;
    this.out.write(JSON.stringify({ type: 'step.updates', cohortId, succeeded: this.take() }));
  }

  private take(): SucceededStep[] {
    const out = this.held;
    this.held = [];
    this.heldCohortId = null;
    this.clearTimer();
    return out;
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
