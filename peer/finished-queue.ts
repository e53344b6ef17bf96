import type { ServerMessage, StepFinished } from '../shared/protocol.js';

/**
 * Step results sent to the authority and not yet acknowledged. They are
 * re-sent after every welcome (a result may have been lost with the link).
 *
 * Acknowledgement rules (protocol v1 has no explicit ack):
 * - `step.update` succeeded/failed for the step: the authority resolved it;
 * - `abort` or `error` naming the lease: the authority is done with that lease;
 * - `assign`, `wait`, `complete`: the authority only sends these to a peer it
 *   considers idle, i.e. after it processed every result the peer sent.
 */
export class FinishedQueue {
  private items: StepFinished[] = [];

  push(finished: StepFinished): void {
    this.items.push(finished);
  }

  get pending(): readonly StepFinished[] {
    return this.items;
  }

  /** The most recent unacknowledged result (reported as `currentStep` on resume when nothing runs). */
  latest(): StepFinished | null {
    return this.items[this.items.length - 1] ?? null;
  }

  /** Applies one frame from the authority. */
  observe(message: ServerMessage): void {
    switch (message.type) {
      case 'assign':
      case 'wait':
      case 'complete':
        this.items = [];
        return;
      case 'step.update':
        if (message.state === 'succeeded' || message.state === 'failed') this.items = this.items.filter((f) => f.stepId !== message.stepId);
        return;
      case 'abort':
      case 'error':
        if (message.leaseId !== undefined) this.items = this.items.filter((f) => f.leaseId !== message.leaseId);
        return;
      case 'welcome':
        return;
    }
  }
}
