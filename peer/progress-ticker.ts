import type { ServerMessage, Wait } from '../shared/protocol.js';
import type { StepDef } from '../shared/schema-file.js';
import { formatDuration, type PeerReport } from './report.js';
import type { SessionObserver } from './session.js';
import type { StepRun } from './step-runner.js';

/**
 * Never silent: while the peer has no step of its own running (waiting on
 * others, or still reaching the authority), it prints a progress line at
 * least every `intervalMs`, e.g.
 * `waiting: 3/8 resolved; perception held by ci-7 for 12m 03s, est. 15m 00s`.
 * CI systems kill a job that prints nothing for a while (CircleCI: 10 min).
 * Under --quiet the line is not printed (quiet keeps only assignments,
 * failures and the final line); --help and docs/peer.md say so.
 * "Held for" is the lease's true age: the authority sends it with each
 * running step (`heldMs` in `wait`), and this peer adds the time since that
 * frame arrived; from an older authority without it, it counts from when this
 * peer first saw the step running. The estimate is the schema's.
 */
export class ProgressTicker implements SessionObserver {
  private timer: NodeJS.Timeout | null = null;
  private lastLineAtMs: number;
  private readonly startedAtMs: number;
  private joined = false;
  private running: string | null = null;
  private lastWait: Wait | null = null;
  private resolved = 0;
  /** When each running lease started, on this peer's clock: from `heldMs`, else when it was first seen. */
  private readonly heldSinceMs = new Map<string, number>();
  private readonly estimates: ReadonlyMap<string, number | undefined>;

  constructor(
    private readonly report: PeerReport,
    steps: readonly StepDef[],
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {
    this.estimates = new Map(steps.map((s) => [s.id, s.estimateSec]));
    this.startedAtMs = now();
    this.lastLineAtMs = this.startedAtMs;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.max(200, Math.min(this.intervalMs / 4, 5_000)));
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  frame(message: ServerMessage): void {
    switch (message.type) {
      case 'welcome':
        this.joined = true;
        this.resolved = message.cohort.resolved;
        return;
      case 'wait': {
        this.lastWait = message;
        const now = this.now();
        for (const r of message.running) {
          if (r.heldMs !== undefined) this.heldSinceMs.set(key(r), now - r.heldMs);
          else if (!this.heldSinceMs.has(key(r))) this.heldSinceMs.set(key(r), now);
        }
        return;
      }
      case 'step.update':
        if (message.state === 'succeeded' || message.state === 'failed') this.resolved++;
        else if (message.state === 'pending') this.resolved = Math.max(0, this.resolved - 1);
        return;
      case 'assign':
        this.lastWait = null;
        return;
      default:
        return;
    }
  }

  stepStarted(stepId: string): void {
    this.running = stepId;
  }

  stepSettled(_stepId: string, _run: StepRun): void {
    this.running = null;
    this.lastLineAtMs = this.now();
  }

  private tick(): void {
    const now = this.now();
    if (this.running !== null || now - this.lastLineAtMs < this.intervalMs) return;
    this.lastLineAtMs = now;
    this.report.progress(this.line(now));
  }

  private line(now: number): string {
    if (!this.joined) return `still reaching the authority (${formatDuration(now - this.startedAtMs)} so far)`;
    const total = this.estimates.size;
    const wait = this.lastWait;
    const resolved = wait === null ? this.resolved : total - wait.unresolved;
    if (wait === null || wait.running.length === 0) return `waiting: ${resolved}/${total} resolved; nothing assignable yet`;
    const held = wait.running.map((r) => {
      const est = this.estimates.get(r.stepId);
      const since = this.heldSinceMs.get(key(r)) ?? now;
      return `${r.stepId} held by ${r.peerId} for ${formatDuration(now - since)}${est === undefined ? '' : `, est. ${formatDuration(est * 1000)}`}`;
    });
    return `waiting: ${resolved}/${total} resolved; ${held.join('; ')}`;
  }
}

function key(r: { stepId: string; peerId: string }): string {
  return `${r.stepId}\u0000${r.peerId}`;
}
