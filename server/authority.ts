import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from './core/clock.js';
import { refusalCode, type Refusal } from './core/effects.js';
import type { AdminResult, ConnId, CoreInput, CoreOutput, Effect } from './core/core-types.js';
import type { Snapshot, Write } from './core/records.js';
import type { Scheduler } from './core/scheduler.js';
import type { SchedulerStore } from './core/store-port.js';
import { refusalLine } from './http/lifecycle-log.js';
import type { Metrics } from './http/metrics.js';
import { TurnCost } from './turn-cost.js';

/** Where the authority delivers a connection's effects (a v1 socket or a Task Director adapter renders its own frames). */
export interface ConnectionSink {
  deliver(effect: Effect): void;
  close(code: number, reason: string): void;
}

/**
 * Group commit while few peers are connected: the inputs of this many ms share one transaction
 * (issue 17). With many peers, the inputs of one event-loop turn already do.
 */
export interface GroupCommit {
  /** How long the first input of a batch waits for others before the commit; 0: commit every turn. */
  readonly windowMs: number;
  /** Only while at most this many connections are open. */
  readonly maxPeers: number;
}

/** Group commit (`--group-commit MS`, off by default) applies while at most this many peers are connected. */
export const groupCommitMaxPeers = 32;

/**
 * How much input one event-loop turn takes (issue 11: no block over 50 ms). Frames that arrive
 * in one poll phase are handled as they come until the turn has spent `budgetMs`; the rest wait,
 * in arrival order, and are handled in later turns of at most `budgetMs` each, each committed and
 * delivered before the next starts, so timers, pings and `/healthz` run between. The budget counts
 * the commit and delivery still to come as well: each input taken adds what committing and
 * delivering one input has cost in recent turns ({@link TurnCost}), so a turn of 10 ms of inputs
 * is not followed by 20 ms of commit and delivery in the same turn.
 */
export interface TurnBudget {
  /** Time one turn may take (its inputs, plus their commit and delivery as estimated) before later inputs wait for the next turn, ms. */
  readonly budgetMs: number;
  /** A monotonic clock for the budget, ms (`performance.now`; tests pass a fake). */
  readonly elapsedMs: () => number;
  /**
   * At most this many inputs wait; beyond it the oldest is handled at once, over the budget.
   * An authority that cannot keep up then reads its sockets more slowly (as without the budget:
   * TCP holds the rest back) instead of holding an ever longer queue of decoded frames in memory.
   */
  readonly maxWaiting: number;
}

/** One turn (its inputs, then the commit and delivery of what they did) takes about this long. */
export const defaultTurnBudget: TurnBudget = Object.freeze({ budgetMs: 10, elapsedMs: () => performance.now(), maxWaiting: 5_000 });

/** An input or a transport effect waiting for a later turn; both keep their order. */
type Deferred = { readonly input: CoreInput } | { readonly effect: Effect };

/**
 * Runs the pure scheduler against the real world: feeds it inputs with the
 * clock's time, commits its writes in batches (one transaction per event-loop
 * turn, or per {@link GroupCommit} window while few peers are connected), and
 * only then delivers its effects. Keeps one timer for the core's next deadline.
 *
 * Invariant: no frame about a transition leaves before that transition is
 * committed. If a commit fails, nothing of the batch is sent and the authority
 * stops (state in memory would no longer match the database): `onFatal` runs.
 * An input is all or nothing in the core (its journal rolls a faulted input
 * back alone, before anything is queued), so a batch holds only whole inputs.
 */
export class Authority {
  private readonly sinks = new Map<ConnId, ConnectionSink>();
  private pendingWrites: Write[] = [];
  private pendingEffects: Effect[] = [];
  private flushScheduled = false;
  /** The batch being gathered commits at the end of this turn (not after a group-commit window), so the turn budget applies. */
  private turnBudgeted = false;
  /** When the batch being gathered took its first input (the turn budget's clock). */
  private batchStartedMs = 0;
  /** Inputs in the batch being gathered (each adds the estimated commit and delivery to the turn). */
  private batchInputs = 0;
  private readonly tail = new TurnCost();
  /** Inputs (and transport effects behind them) that arrived after the turn's budget was spent. */
  private deferred: Deferred[] = [];
  private deferredScheduled = false;
  /** The batch being committed by an asynchronous store; later inputs queue behind it. */
  private committing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextConnId = 1;
  private stopped = false;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly store: SchedulerStore,
    private readonly clock: Clock,
    private readonly log: FastifyBaseLogger,
    private readonly metrics: Metrics,
    private readonly retentionMs: number,
    private readonly onFatal: (err: Error) => void,
    private readonly groupCommit: GroupCommit = { windowMs: 0, maxPeers: 0 },
    private readonly turn: TurnBudget = defaultTurnBudget,
  ) {}

  /** Loads persisted state into the scheduler and arms the deadline timer; returns the snapshot it restored. */
  async start(): Promise<Snapshot> {
    const now = this.clock.now();
    const snapshot = await this.store.load(now, this.retentionMs);
    const out = this.scheduler.restore(snapshot, now);
    await this.store.apply(out.writes);
    // Restoring can resolve things (a step that lost its peer once too often fails): its counters count.
    for (const effect of out.effects) this.deliver(effect);
    this.log.info({ cohorts: snapshot.cohorts.length, leases: snapshot.leases.filter((l) => l.end === null).length, memos: snapshot.memos.length }, 'state loaded');
    this.submit({ kind: 'tick' });
    return snapshot;
  }

  /** The scheduler's persisted state as it is in memory (tests compare it with the database). */
  dump(): Snapshot {
    return this.scheduler.dump();
  }

  /** Draining is one flag, the core's: no new leases or joins once set. */
  get isDraining(): boolean {
    return this.scheduler.isDraining;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  openConnection(sink: ConnectionSink): ConnId {
    const connId = this.nextConnId++;
    this.sinks.set(connId, sink);
    return connId;
  }

  closeConnection(connId: ConnId): void {
    this.sinks.delete(connId);
  }

  /**
   * Feeds one input; its writes commit and its frames go out on the next flush (same event-loop
   * turn). Once the turn has spent its budget, or while a commit is in flight, the input waits for
   * a later turn instead, behind any already waiting ({@link TurnBudget}).
   */
  submit(input: CoreInput): void {
    if (this.stopped) return;
    // While a batch waits for an asynchronous commit (a background checkpoint or pruning batch holds
    // the commit gate; PostgreSQL), inputs wait too: handled as they came, their writes would all
    // commit and deliver in the one turn after it, unbounded (a 67 ms block in the day benchmark).
    if (this.deferred.length > 0 || this.committing !== null || (this.turnBudgeted && this.turnSpentMs(this.batchStartedMs, this.batchInputs) >= this.turn.budgetMs)) {
      this.defer({ input });
      return;
    }
    this.handle(input);
  }

  /** Inputs (and transport effects queued behind them) waiting for a later turn: the budget of the turn they arrived in was spent. */
  get deferredCount(): number {
    return this.deferred.length;
  }

  /** The turn's time so far since `startedMs`, plus the commit and delivery its `inputs` will cost as recent turns say. */
  private turnSpentMs(startedMs: number, inputs: number): number {
    return this.turn.elapsedMs() - startedMs + inputs * this.tail.msPerInput;
  }

  private handle(input: CoreInput): void {
    if (!this.flushScheduled) this.batchStartedMs = this.turn.elapsedMs();
    this.batchInputs++;
    this.take(input, this.scheduler.handle(input, this.clock.now()));
    this.scheduleFlush();
  }

  private defer(item: Deferred): void {
    this.deferred.push(item);
    if ('input' in item) this.metrics.inputsDeferred.inc();
    // Over the cap the oldest waiting item goes first, now: the queue keeps its order and its bound.
    while (this.deferred.length > this.turn.maxWaiting) {
      const oldest = this.deferred.shift()!;
      this.metrics.inputsOverBudget.inc();
      if ('input' in oldest) this.handle(oldest.input);
      else {
        this.pendingEffects.push(oldest.effect);
        this.scheduleFlush();
      }
    }
    this.scheduleDeferred();
  }

  private scheduleDeferred(): void {
    if (this.deferredScheduled || this.flushScheduled || this.committing !== null) return;
    this.deferredScheduled = true;
    setImmediate(() => {
      this.deferredScheduled = false;
      this.takeDeferred(this.turn.budgetMs);
    });
  }

  /**
   * Handles waiting inputs, in order, for up to `budgetMs` (all of them with Infinity), then
   * commits and delivers them; what is left waits for the next turn.
   */
  private takeDeferred(budgetMs: number): void {
    if (this.stopped) return;
    const startedMs = this.turn.elapsedMs();
    const queue = this.deferred;
    let taken = 0;
    while (taken < queue.length && (taken === 0 || this.turnSpentMs(startedMs, this.batchInputs) < budgetMs)) {
      const item = queue[taken++]!;
      if ('input' in item) {
        this.batchInputs++;
        this.take(item.input, this.scheduler.handle(item.input, this.clock.now()));
      } else this.pendingEffects.push(item.effect);
    }
    // Shifting item by item would be quadratic in a long queue; one splice per turn is not.
    if (taken === queue.length) this.deferred = [];
    else queue.splice(0, taken);
    this.flush();
  }

  /**
   * Queues an input's writes and effects. An input that faulted changed
   * nothing (the core rolled it back); its error is logged whole and its
   * effects only tell the sender INTERNAL, so the authority carries on.
   */
  private take(input: CoreInput, out: CoreOutput): void {
    if (out.fault !== null) {
      const where = 'connId' in input ? { connId: input.connId, ...(input.kind === 'hello' ? { peerId: input.peerId } : {}) } : {};
      this.log.error({ err: out.fault, input: { kind: input.kind, ...where } }, 'core input failed; it was rolled back and changed nothing');
    }
    if (out.writes.length > 0) this.pendingWrites.push(...out.writes);
    if (out.effects.length > 0) this.pendingEffects.push(...out.effects);
  }

  /**
   * Queues a frame or close that is not a scheduler transition (a transport
   * error), behind everything already queued for delivery.
   */
  enqueue(effect: Effect): void {
    if (this.stopped) return;
    if (this.deferred.length > 0) {
      this.defer({ effect });
      return;
    }
    this.pendingEffects.push(effect);
    this.scheduleFlush();
  }

  /** Feeds an admin input and commits at once, so the HTTP reply reflects committed state. */
  async submitNow(input: CoreInput): Promise<AdminResult> {
    if (this.stopped) return { ok: false, status: 409, code: 'STOPPED', message: 'the authority is stopping' };
    // Inputs that arrived before this one are handled first, whatever the turn's budget.
    if (this.deferred.length > 0) this.takeDeferred(Infinity);
    const out = this.scheduler.handle(input, this.clock.now());
    this.batchInputs++;
    this.take(input, out);
    this.flush();
    await this.settled();
    if (this.stopped) return { ok: false, status: 409, code: 'STOPPED', message: 'the authority stopped before the change was committed' };
    return out.admin ?? { ok: true };
  }

  /** Resolves once every input taken so far is handled and its writes committed (or the authority stopped). */
  async settled(): Promise<void> {
    // Inputs waiting for a later turn are handled now, and writes waiting for a group-commit window commit now.
    for (;;) {
      if (this.deferred.length > 0 && this.committing === null) this.takeDeferred(Infinity);
      if (this.flushScheduled && this.committing === null) this.flush();
      if (this.committing === null) {
        if (this.deferred.length === 0 || this.stopped) return;
        continue;
      }
      await this.committing;
    }
  }

  /** Stops granting leases; completions still commit. */
  drain(): void {
    if (this.scheduler.isDraining) return;
    this.submit({ kind: 'drain' });
  }

  /** Commits what is pending and stops; no more inputs are taken. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.flush();
    await this.settled();
    this.flush();
    await this.settled();
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Nothing is acknowledged meanwhile: effects wait for the commit either way.
    this.turnBudgeted = !(this.groupCommit.windowMs > 0 && this.sinks.size <= this.groupCommit.maxPeers);
    if (!this.turnBudgeted) setTimeout(() => this.flush(), this.groupCommit.windowMs);
    else setImmediate(() => this.flush());
  }

  /**
   * Commit, then deliver, then re-arm the deadline timer. With an asynchronous
   * store the effects wait for the commit; inputs taken meanwhile queue their
   * writes and effects, which commit as the next batch once this one has.
   */
  flush(): void {
    this.flushScheduled = false;
    this.turnBudgeted = false;
    if (this.stopped || this.committing !== null) return;
    const writes = this.pendingWrites;
    const effects = this.pendingEffects;
    const inputs = this.batchInputs;
    this.pendingWrites = [];
    this.pendingEffects = [];
    this.batchInputs = 0;
    // The event loop's share of a commit: all of SQLite's; PostgreSQL's up to the round trip.
    const applyFrom = this.turn.elapsedMs();
    let commit: void | Promise<void>;
    try {
      commit = this.store.apply(writes);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    const applyMs = this.turn.elapsedMs() - applyFrom;
    if (commit === undefined) {
      this.delivered(effects);
      this.tail.observe(inputs, this.turn.elapsedMs() - applyFrom);
      if (this.deferred.length > 0) this.scheduleDeferred();
      return;
    }
    this.committing = commit.then(
      () => {
        this.committing = null;
        if (this.stopped) return;
        const deliverFrom = this.turn.elapsedMs();
        this.delivered(effects);
        this.tail.observe(inputs, applyMs + this.turn.elapsedMs() - deliverFrom);
        if (this.pendingWrites.length > 0 || this.pendingEffects.length > 0) this.flush();
        else if (this.deferred.length > 0) this.scheduleDeferred();
      },
      (err: unknown) => {
        this.committing = null;
        this.fail(err as Error);
      },
    );
  }

  private delivered(effects: readonly Effect[]): void {
    for (const effect of effects) this.deliver(effect);
    this.armTimer();
  }

  /** Hands an effect to the connection(s) it is about (each renders its own frames), or to metrics and the log. */
  private deliver(effect: Effect): void {
    switch (effect.kind) {
      case 'stat':
        this.metrics.recordStat(effect.stat, effect.value);
        return;
      case 'notice':
        this.log.warn(effect.fields, effect.message);
        return;
      case 'step-changed':
        for (const connId of effect.connIds) this.sinks.get(connId)?.deliver(effect);
        return;
      case 'refuse':
        if (this.sinks.has(effect.connId)) this.metrics.errors.inc({ code: refusalCode(effect.refusal) });
        this.logRefusal(effect.connId, effect.refusal);
        this.sinks.get(effect.connId)?.deliver(effect);
        return;
      default:
        this.sinks.get(effect.connId)?.deliver(effect);
    }
  }

  private logRefusal(connId: ConnId, refusal: Refusal): void {
    const line = refusalLine(connId, refusal);
    if (line) this.log[line.level](line.fields, line.msg);
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const deadline = this.scheduler.nextDeadlineMs();
    if (deadline === null) return;
    const delay = Math.min(Math.max(0, deadline - this.clock.now()), 2_147_483_647);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.submit({ kind: 'tick' });
    }, delay);
    this.timer.unref();
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.log.fatal({ err }, 'commit failed; stopping the authority so memory and database cannot diverge');
    for (const sink of this.sinks.values()) sink.close(1011, 'authority stopped');
    this.onFatal(err);
  }
}
