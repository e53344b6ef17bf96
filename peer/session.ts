import { randomBytes } from 'node:crypto';
import { closeCodes } from '../shared/close-codes.js';
import { cohortPageUrl } from '../shared/dashboard-url.js';
import { decodeServerMessage } from '../shared/frames.js';
import type { Abort, Assign, Complete, ErrorMessage, Hello, ServerMessage, StepFinished, StepUpdate, Wait, Welcome } from '../shared/protocol.js';
import { helloSchemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef, StepDef } from '../shared/schema-file.js';
import { AuthorityLink, type LinkEnd } from './authority-link.js';
import { expandCoalesced } from './coalesced-updates.js';
import { FinishedQueue } from './finished-queue.js';
import { byeReason, helloFrame, type BaseHello, type HelloForm, type HelloIdentity } from './session-frames.js';
import { classifyLinkEnd, describeLinkEnd, stepIdsIn } from './frame-checks.js';
import type { BackoffPolicy } from './backoff.js';
import { builtElsewhereLine, failedStepLine, formatDuration, formatExit, waitingLine, type PeerReport } from './report.js';
import { runTimed, type StepRun, type StepRunner } from './step-runner.js';
import { ServerList } from './server-list.js';
import { SessionStateCell } from './session-state.js';

/**
 * One peer's conversation with the authority, from the first connect to
 * `complete` (or until it gives up and fails open).
 *
 * States: connecting -> joined (welcome) -> [link lost -> connecting -> joined]* -> ended.
 * - connecting: retries with backoff and jitter until a deadline: `connectTimeoutMs`
 *   before the first welcome, `patienceMs` after a joined link was lost. Past it: fail-open.
 *   With several servers, each retry goes to the one that may be tried soonest (a standby
 *   answers 503 and is skipped; see server-list.ts); the deadline covers them all.
 * - joined: runs at most one assigned step at a time. A running step keeps running
 *   while the link is down; reconnecting resumes with the resume token and the
 *   step (running, or finished but not yet acknowledged) as `currentStep`. Before the
 *   first welcome every hello carries the same registration token instead, so a join
 *   the authority committed without its welcome reaching us is resumed, not refused.
 * - ended: once, with an outcome; the link is closed (with `bye` when it was open).
 * Invariants:
 * - a step id the local schema lacks is never run: any frame naming one ends the
 *   session as fail-open ("untrusted"), like an invalid frame does;
 * - a `step.finished` stays queued until acknowledged (a `step.update` for its step,
 *   an `error`/`abort` naming its lease, or any `assign`/`wait`/`complete`, which the
 *   authority only sends to a peer it considers idle) and is re-sent after each welcome.
 */

export type FailOpenCause = 'unreachable' | 'unauthorized' | 'refused' | 'gone' | 'untrusted';

export type SessionOutcome =
  | { readonly kind: 'complete'; readonly complete: Complete }
  | { readonly kind: 'shared-failure'; readonly failure: StepUpdate }
  | { readonly kind: 'fail-open'; readonly cause: FailOpenCause; readonly detail: string }
  /** COMMAND could not start on this peer (e.g. ENOENT): its lease is released with `bye`, not failed. */
  | { readonly kind: 'cannot-start'; readonly stepId: string; readonly startError: string }
  | { readonly kind: 'interrupted' };

/** Sees what the session sees, for progress lines and the run report; must not throw. */
export interface SessionObserver {
  /** Every valid frame from the authority (`from`: its URL), before the session acts on it. */
  frame(message: ServerMessage, from: string): void;
  /** A leased step started running here. */
  stepStarted(stepId: string): void;
  /** A leased step this peer ran has settled. */
  stepSettled(stepId: string, run: StepRun): void;
}

export interface SessionConfig {
  /** The authorities, in order of preference (the active one and its standbys). */
  readonly servers: readonly string[];
  readonly token: string | null;
  /** The hello without resume fields, with the schema (sent when the authority asks for it: session-frames.ts). */
  readonly hello: BaseHello;
  /**
   * This process's registration token (hello `registrationToken`), sent until the first welcome; default:
   * 32 random bytes, base64url. Lets a hello whose welcome was lost resume the registration it made.
   */
  readonly registrationToken?: string;
  readonly schema: SchemaDef;
  readonly onSharedFailure: 'fail' | 'continue';
  readonly connectTimeoutMs: number;
  readonly patienceMs: number;
  readonly backoff: BackoffPolicy;
  /** In [0, 1); jitter for reconnects. */
  readonly random: () => number;
  readonly runner: StepRunner;
  readonly report: PeerReport;
  readonly now: () => number;
  readonly observer?: SessionObserver;
}

/** A step this peer ran under a lease, with its result. */
export interface LeasedRun {
  readonly stepId: string;
  readonly leaseId: string;
  readonly run: StepRun;
}

interface Running {
  readonly stepId: string;
  readonly leaseId: string;
  readonly controller: AbortController;
  abortReason: string | null;
  readonly promise: Promise<LeasedRun>;
}

const abortReasons: Readonly<Record<Abort['reason'], string>> = {
  superseded: 'another copy finished first',
  cancelled: 'cancelled by the authority',
  'lease-lost': "this peer's lease was lost",
};

export class PeerSession {
  /** Steps this peer built (successful runs under a lease). */
  readonly builtHere: string[] = [];
  /** Resolution of steps as the authority announced them. */
  readonly updates = new Map<string, StepUpdate>();
  cohortId: string | null = null;

  private readonly steps: ReadonlyMap<string, StepDef>;
  private link: AuthorityLink | null = null;
  private readonly servers: ServerList;
  /** The server that sent the last welcome. */
  private welcomedBy: string | null = null;
  /** Connection lifecycle: see session-state.ts. */
  private readonly lifecycle = new SessionStateCell();
  private resumeToken: string | null = null;
  private readonly registrationToken: string;
  private running: Running | null = null;
  private queuedAssign: Assign | null = null;
  /** A run that settled after the session ended (its result was not sent). */
  private settledAfterEnd: LeasedRun | null = null;
  private readonly unreported = new FinishedQueue();
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineAtMs: number | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private lastEnd: string | null = null;
  private lastError: ErrorMessage | null = null;
  /** The form of the hello sent on the current link (session-frames.ts). */
  private helloForm: HelloForm = 'digest';
  /** What a digest-first hello names the schema by. */
  private readonly schemaDigest: string;
  private announcedRetry = false;
  private resolveOutcome!: (outcome: SessionOutcome) => void;
  private readonly outcome = new Promise<SessionOutcome>((resolve) => (this.resolveOutcome = resolve));

  constructor(private readonly config: SessionConfig) {
    this.steps = new Map(config.schema.steps.map((s) => [s.id, s]));
    this.servers = new ServerList(config.servers, config.backoff, config.random);
    this.registrationToken = config.registrationToken ?? randomBytes(32).toString('base64url');
    this.schemaDigest = helloSchemaDigest(config.schema);
  }

  /** The authority that welcomed this peer last (the active one), or null before the first welcome. */
  get authorityUrl(): string | null {
    return this.welcomedBy;
  }

  /** Connects and runs until the outcome; never rejects. */
  run(signal?: AbortSignal): Promise<SessionOutcome> {
    if (signal?.aborted) {
      this.end({ kind: 'interrupted' });
      return this.outcome;
    }
    signal?.addEventListener('abort', () => this.end({ kind: 'interrupted' }), { once: true });
    this.setDeadline(this.config.connectTimeoutMs, 'unreachable');
    this.connect();
    return this.outcome;
  }

  /** The step running when the session ended, once it has settled; null if none was running. */
  async settleRunning(): Promise<LeasedRun | null> {
    return this.running ? this.running.promise : this.settledAfterEnd;
  }

  /** Stops the running step (its process group is killed by the command runner). */
  abortRunning(reason: string): void {
    if (!this.running || this.running.controller.signal.aborted) return;
    this.running.abortReason = reason;
    this.running.controller.abort();
  }

  // ---- connection ------------------------------------------------------------

  private connect(): void {
    this.lifecycle.to('connecting');
    const remainingMs = this.deadlineAtMs === null ? 10_000 : this.deadlineAtMs - this.config.now();
    const link: AuthorityLink = new AuthorityLink(this.servers.current, this.config.token, Math.min(Math.max(remainingMs, 500), 10_000), {
      opened: () => {
        if (link !== this.link) return;
        link.send(this.helloFrame('digest'));
      },
      frame: (text) => {
        if (link === this.link) this.onFrame(text);
      },
      binaryFrame: () => {
        if (link === this.link) this.untrusted('it sent a binary frame (protocol v1 uses JSON text frames only)');
      },
      ended: (end) => {
        if (link === this.link) this.onLinkEnded(end);
      },
    });
    this.link = link;
  }

  /** This connection's hello: digest-first, the full one when the authority asks for it (session-frames.ts). */
  private helloFrame(form: HelloForm): Hello {
    this.helloForm = form;
    const current = this.running ?? this.unreported.latest();
    const identity: HelloIdentity =
      this.resumeToken === null
        ? { kind: 'registration', registrationToken: this.registrationToken }
        : { kind: 'resume', resumeToken: this.resumeToken, currentStep: current === null ? null : { stepId: current.stepId, leaseId: current.leaseId } };
    return helloFrame(this.config.hello, identity, form, this.schemaDigest);
  }

  private onLinkEnded(end: LinkEnd): void {
    const wasJoined = this.lifecycle.joined;
    this.link = null;
    if (this.lifecycle.ended) return;
    this.lifecycle.to('reconnecting');
    const url = this.servers.current;
    const described = describeLinkEnd(end, this.lastError);
    this.lastEnd = described;
    this.lastError = null;
    const verdict = classifyLinkEnd(end);
    const at = this.servers.size > 1 ? ` at ${url}` : '';
    if (verdict === 'unauthorized') {
      this.end({ kind: 'fail-open', cause: 'unauthorized', detail: `the authority${at} refused this peer's token (${described})` });
      return;
    }
    if (verdict === 'refused') {
      this.end({ kind: 'fail-open', cause: 'refused', detail: `the authority${at} refused this peer (${described})` });
      return;
    }
    this.config.report.diagnostic(`connection to the authority at ${url} ended: ${described}`);
    const others = this.servers.size > 1 ? ` (${this.servers.size} authorities listed)` : '';
    if (wasJoined) {
      this.config.report.event(`lost the authority at ${url} (${described}); reconnecting for up to ${formatDuration(this.config.patienceMs)}${others}${this.running ? `, step ${this.running.stepId} keeps running` : ''}`);
      this.setDeadline(this.config.patienceMs, 'gone');
    } else if (!this.announcedRetry && this.resumeToken === null) {
      this.announcedRetry = true;
      this.config.report.event(`cannot reach the authority at ${url} yet (${described}); retrying${others}`);
    }
    if (this.lifecycle.ended) return; // a zero patience ends at once
    // 1012: a planned handover to a standby authority, which takes over at once: no backoff.
    const next = this.servers.ended(end.code === closeCodes.serviceRestart ? { kind: 'restart' } : { kind: 'failed', retryAfterMs: end.retryAfterMs ?? null }, this.config.now());
    const to = this.servers.size > 1 || next.url !== url ? ` to ${next.url}` : '';
    this.config.report.diagnostic(`reconnecting${to} in ${next.delayMs} ms (${next.failures === 0 ? 'first try' : `after ${next.failures} failed ${next.failures === 1 ? 'try' : 'tries'}`})`);
    const delayMs = next.delayMs;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.lifecycle.ended) this.connect();
    }, delayMs);
  }

  private setDeadline(ms: number, cause: 'unreachable' | 'gone'): void {
    if (this.deadlineTimer !== null) return; // the clock is already running
    this.deadlineAtMs = this.config.now() + ms;
    const fire = (): void => {
      this.deadlineTimer = null;
      const last = this.lastEnd ? `; last attempt: ${this.lastEnd}` : '';
      const detail =
        cause === 'unreachable'
          ? `no answer from the authority at ${this.servers.urls.join(', ')} within ${formatDuration(ms)}${last}`
          : `the authority has been gone for ${formatDuration(ms)}${last}`;
      this.end({ kind: 'fail-open', cause, detail });
    };
    if (ms <= 0) {
      fire();
      return;
    }
    this.deadlineTimer = setTimeout(fire, ms);
  }

  private clearDeadline(): void {
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.deadlineAtMs = null;
  }

  // ---- frames ------------------------------------------------------------------

  private onFrame(text: string): void {
    if (this.lifecycle.ended) return;
    const decoded = decodeServerMessage(text);
    if (!decoded.ok) {
      this.untrusted(`it sent an invalid frame: ${decoded.problem}`);
      return;
    }
    const message = decoded.message;
    const unknown = stepIdsIn(message).find((id) => !this.steps.has(id));
    if (unknown !== undefined) {
      this.untrusted(`its ${message.type} names step "${unknown}", which schema ${this.config.schema.id} does not have; refusing to run it`);
      return;
    }
    // Batched successes become the step.update frames an authority without batching sends.
    for (const one of expandCoalesced(message)) {
      if (this.lifecycle.ended) return;
      this.onMessage(one);
    }
  }

  private onMessage(message: ServerMessage): void {
    this.unreported.observe(message);
    this.config.observer?.frame(message, this.servers.current);
    switch (message.type) {
      case 'welcome':
        return this.onWelcome(message);
      case 'assign':
        return this.onAssign(message);
      case 'wait':
        return this.onWait(message);
      case 'step.update':
        return this.onStepUpdate(message);
      case 'step.updates':
        return; // expanded by expandCoalesced above
      case 'abort':
        return this.onAbort(message);
      case 'complete':
        this.end({ kind: 'complete', complete: message });
        return;
      case 'error':
        return this.onError(message);
    }
  }

  private onWelcome(welcome: Welcome): void {
    if (welcome.peerId !== this.config.hello.peerId) {
      this.untrusted(`its welcome is for peer "${welcome.peerId}", not "${this.config.hello.peerId}"`);
      return;
    }
    const first = this.resumeToken === null;
    const movedFrom = this.welcomedBy !== null && this.welcomedBy !== this.servers.current ? this.welcomedBy : null;
    this.welcomedBy = this.servers.current;
    this.clearDeadline();
    this.servers.joined();
    this.lifecycle.to('joined');
    this.announcedRetry = false;
    this.resumeToken = welcome.resumeToken;
    this.link?.watch(welcome.pingIntervalMs);
    const { cohort } = welcome;
    const state = `${cohort.peers} ${cohort.peers === 1 ? 'peer' : 'peers'}, ${cohort.resolved}/${cohort.steps} steps resolved`;
    if (first) this.config.report.event(`joined cohort ${cohort.id} as peer ${welcome.peerId} (${state})`);
    if (first) this.config.report.event(`cohort page: ${cohortPageUrl(this.welcomedBy, cohort.id)}`);
    else if (welcome.resumed) this.config.report.event(`reconnected and resumed in cohort ${cohort.id} (${state})${movedFrom === null ? '' : `, now on ${this.welcomedBy}`}`);
    else {
      this.config.report.warning(
        `the authority had lost this peer (grace period over, or its state was reset); rejoined as a new member of cohort ${cohort.id} (${state})`,
      );
    }
    if (!first && movedFrom !== null) this.config.report.event(`cohort page: ${cohortPageUrl(this.welcomedBy, cohort.id)} (the active authority changed)`);
    this.cohortId = cohort.id;
    // Steps resolved before this peer joined (by others, or from memo) are never broadcast to it again.
    for (const done of cohort.succeeded) {
      if (!this.updates.has(done.stepId)) {
        this.updates.set(done.stepId, { type: 'step.update', cohortId: cohort.id, stepId: done.stepId, state: 'succeeded', peerId: done.peerId, fromMemo: done.fromMemo });
      }
    }
    for (const finished of this.unreported.pending) this.link?.send(finished);
  }

  private onAssign(assign: Assign): void {
    if (this.running) {
      if (!this.running.controller.signal.aborted) {
        this.config.report.diagnostic(`the authority assigned ${assign.stepId} while ${this.running.stepId} is still running; it will start next`);
      }
      this.queuedAssign = assign;
      return;
    }
    this.start(assign);
  }

  private start(assign: Assign): void {
    const step = this.steps.get(assign.stepId)!;
    const notes = [step.target, ...(assign.attempt > 1 ? [`attempt ${assign.attempt}`] : []), ...(assign.backup ? ['backup copy'] : [])];
    this.config.report.assignment(`step ${step.id} assigned (${notes.join(', ')})`);
    const controller = new AbortController();
    let settle!: (result: LeasedRun) => void;
    const running: Running = { stepId: step.id, leaseId: assign.leaseId, controller, abortReason: null, promise: new Promise((r) => (settle = r)) };
    // Registered before the runner is called: a runner may trigger an abort synchronously.
    this.running = running;
    this.config.observer?.stepStarted(step.id);
    const ctx = { stepId: step.id, target: step.target, phase: 'step' as const, signal: controller.signal };
    void runTimed(this.config.runner, ctx, this.config.now).then((run) => settle(this.onStepDone(running, run)));
  }

  private onStepDone(running: Running, run: StepRun): LeasedRun {
    if (this.running === running) this.running = null;
    const { stepId, leaseId } = running;
    const took = formatDuration(run.durationMs);
    this.config.observer?.stepSettled(stepId, run);
    if (run.startError !== null && !run.aborted) {
      // Not a failure of the step: this peer cannot run anything. Release the lease (bye), do not fail it.
      this.config.report.failure(`step ${stepId} could not start (${run.startError}); releasing it for another peer`, run.logTail);
      const result = { stepId, leaseId, run };
      if (this.lifecycle.ended) this.settledAfterEnd = result;
      this.end({ kind: 'cannot-start', stepId, startError: run.startError });
      return result;
    }
    if (run.aborted) {
      this.config.report.event(`step ${stepId} stopped after ${took}: ${running.abortReason ?? 'aborted'}`);
    } else {
      if (run.ok) {
        this.builtHere.push(stepId);
        this.config.report.event(`step ${stepId} finished in ${took}`);
      } else if (run.unpublished !== null) {
        this.config.report.warning(`step ${stepId} built in ${took} but NOT published: ${run.unpublished}; the authority will lease it again`);
      } else {
        this.config.report.event(`step ${stepId} failed here with ${formatExit(run.exitCode)} after ${took}`);
      }
      if (!this.lifecycle.ended) {
        const finished: StepFinished = {
          type: 'step.finished',
          leaseId,
          stepId,
          ok: run.ok,
          exitCode: run.exitCode,
          durationMs: run.durationMs,
          ...(run.ok || run.logTail === undefined ? {} : { logTail: run.logTail }),
          ...(run.unpublished === null ? {} : { unpublished: true as const }),
        };
        this.unreported.push(finished);
        if (this.lifecycle.joined) this.link?.send(finished);
      }
    }
    const result = { stepId, leaseId, run };
    if (this.lifecycle.ended) this.settledAfterEnd = result;
    const next = this.queuedAssign;
    this.queuedAssign = null;
    if (next && !this.lifecycle.ended) this.start(next);
    return result;
  }

  private onWait(wait: Wait): void {
    this.config.report.event(waitingLine(wait));
  }

  private onStepUpdate(update: StepUpdate): void {
    switch (update.state) {
      case 'succeeded':
        this.updates.set(update.stepId, update);
        if (update.peerId !== this.config.hello.peerId) this.config.report.event(builtElsewhereLine(update));
        return;
      case 'failed':
        this.updates.set(update.stepId, update);
        this.config.report.failure(failedStepLine(update), update.logTail);
        if (this.config.onSharedFailure === 'fail') this.end({ kind: 'shared-failure', failure: update });
        else this.config.report.event(`continuing despite the failure of step ${update.stepId} (--on-shared-failure continue); the universe build decides`);
        return;
      case 'pending':
        this.updates.delete(update.stepId);
        this.config.report.event(`step ${update.stepId} is pending again${update.reason ? ` (${update.reason})` : ''}`);
        return;
      case 'leased':
        return;
    }
  }

  private onAbort(abort: Abort): void {
    if (this.queuedAssign?.leaseId === abort.leaseId) this.queuedAssign = null;
    if (this.running?.leaseId === abort.leaseId) this.abortRunning(abortReasons[abort.reason]);
  }

  private onError(error: ErrorMessage): void {
    if (error.code === 'UNKNOWN_SCHEMA') {
      // The authority does not hold our schema: the same hello again, with it, on this connection.
      if (this.helloForm !== 'digest' || this.lifecycle.joined) return this.untrusted(`it asked for the schema (${error.code}) after ${this.helloForm === 'full' ? 'it was sent' : 'the welcome'}`);
      this.config.report.diagnostic(`the authority does not hold schema ${this.config.schema.id} (${this.schemaDigest}); sending it`);
      this.link?.send(this.helloFrame('full'));
      return;
    }
    this.lastError = error;
    const about = error.stepId ? ` (step ${error.stepId}${error.leaseId ? `, lease ${error.leaseId}` : ''})` : '';
    this.config.report.diagnostic(`authority error ${error.code}${about}: ${error.message}`);
  }

  private untrusted(why: string): void {
    this.config.report.diagnostic(`authority misbehaved: ${why}`);
    this.end({ kind: 'fail-open', cause: 'untrusted', detail: `the authority cannot be trusted: ${why}` });
  }

  // ---- the end ---------------------------------------------------------------------

  private end(outcome: SessionOutcome): void {
    if (this.lifecycle.ended) return;
    this.lifecycle.to('ended');
    this.clearDeadline();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.queuedAssign = null;
    if (outcome.kind === 'complete') this.abortRunning('the cohort is complete');
    if (outcome.kind === 'shared-failure') this.abortRunning(`shared step ${outcome.failure.stepId} failed`);
    if (outcome.kind === 'interrupted') this.abortRunning('interrupted');
    const link = this.link;
    this.link = null;
    if (link === null) {
      this.resolveOutcome(outcome);
      return;
    }
    if (link.isOpen) link.send({ type: 'bye', reason: byeReason(outcome) });
    void link.close(closeCodes.normal, 'bye').then(() => this.resolveOutcome(outcome));
  }
}
