import { defaultCoreConfig, type CoreConfig, type CoreInput, type CoreOutput, type Effect } from '../../server/core/core-types.js';
import type { LeaseRecord, Registration, Snapshot, Write } from '../../server/core/records.js';
import { Scheduler } from '../../server/core/scheduler.js';
import { foldLeasesIntoSteps } from '../../server/store/lease-events.js';
import { v1Delivery, v1MessagesFor } from '../../server/http/v1-frames.js';
import { schemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import type { ServerMessage } from '../../shared/protocol.js';
import { FakeClock } from './fake-clock.js';

/** Deterministic ids: c1, c2, ... and l1, l2, ... */
export function counterIds(): { cohortId(): string; leaseId(): string } {
  let c = 0;
  let l = 0;
  return { cohortId: () => `c${++c}`, leaseId: () => `l${++l}` };
}

export function registration(over: Partial<Registration> = {}): Registration {
  return {
    repo: 'git@example.com:acme/mono.git',
    baseRef: 'main',
    baseSha: null,
    patchsets: ['refs/changes/1'],
    changeRef: null,
    pipelineName: 'check',
    pipelineType: 'independent',
    isolated: false,
    cacheId: 'cache-1',
    ...over,
  };
}

export interface HelloOptions {
  reg?: Partial<Registration>;
  schema?: SchemaDef;
  token?: string | null;
  currentStep?: { stepId: string; leaseId: string } | null;
  resumable?: boolean;
  connId?: number;
  /** The peer's own registration token (hello `registrationToken`): also the token a new registration gets. */
  registrationToken?: string;
  /** The hello's `targetedUpdates`. */
  targetedUpdates?: boolean;
}

/**
 * Drives a real Scheduler with a fake clock and records every output, so
 * tests can assert the exact frames each connection was sent.
 */
export class CoreHarness {
  readonly clock = new FakeClock();
  readonly scheduler: Scheduler;
  readonly writes: Write[] = [];
  readonly effects: Effect[] = [];
  /** The connection id of each peer's latest hello. */
  readonly conns = new Map<string, number>();
  readonly tokens = new Map<string, string>();
  private nextConn = 1;

  constructor(
    readonly schema: SchemaDef,
    config: Partial<CoreConfig> = {},
  ) {
    this.scheduler = new Scheduler({ ...defaultCoreConfig, ...config }, counterIds());
  }

  /** One input; a fault (a bug the core rolled back) fails the test, and every invariant is checked over all state. */
  handle(input: CoreInput): CoreOutput {
    const out = this.scheduler.handle(input, this.clock.now());
    if (out.fault !== null) throw out.fault;
    this.scheduler.checkInvariants();
    this.writes.push(...out.writes);
    this.effects.push(...out.effects);
    return out;
  }

  restore(snapshot: Snapshot): CoreOutput {
    const out = this.scheduler.restore(snapshot, this.clock.now());
    this.scheduler.checkInvariants();
    this.writes.push(...out.writes);
    return out;
  }

  hello(peerId: string, options: HelloOptions = {}): CoreOutput {
    const schema = options.schema ?? this.schema;
    const connId = options.connId ?? this.nextConn++;
    this.conns.set(peerId, connId);
    const presented = options.token === undefined ? null : options.token;
    const fresh = options.registrationToken ?? `tok-${peerId}-${connId}`;
    const out = this.handle({
      kind: 'hello',
      connId,
      peerId,
      registration: registration(options.reg),
      schema,
      digest: schemaDigest(schema),
      presentedToken: presented === null ? null : { token: presented, hash: `h(${presented})` },
      freshToken: { token: fresh, hash: `h(${fresh})` },
      ...(options.registrationToken === undefined ? {} : { registrationToken: { token: fresh, hash: `h(${fresh})` } }),
      currentStep: options.currentStep ?? null,
      resumable: options.resumable ?? true,
      ...(options.targetedUpdates === undefined ? {} : { targetedUpdates: options.targetedUpdates }),
    });
    const welcome = messagesIn(out, connId).find((m) => m.type === 'welcome');
    if (welcome?.type === 'welcome') this.tokens.set(peerId, welcome.resumeToken);
    return out;
  }

  /** Reconnects with the peer's resume token. */
  resume(peerId: string, currentStep: { stepId: string; leaseId: string } | null = null, options: HelloOptions = {}): CoreOutput {
    return this.hello(peerId, { ...options, token: this.tokens.get(peerId) ?? null, currentStep });
  }

  /**
   * The peer reports a step. A peer cannot have run longer than it held the
   * lease, and the authority records at most its own measure (lease start to
   * completion): so the fake clock is first moved to at least the lease's
   * start + `durationMs` (default 1000), as the real time would have passed.
   * Pass `advance: false` to report without moving the clock (a peer lying).
   */
  finish(peerId: string, leaseId: string, stepId: string, ok = true, extra: { exitCode?: number | null; durationMs?: number; logTail?: string | null; advance?: boolean } = {}): CoreOutput {
    const durationMs = extra.durationMs ?? 1000;
    const lease = this.leaseRow(leaseId);
    // Only the holder's own report: a refused one (another peer's lease) must not move time.
    if (extra.advance !== false && lease?.peerId === peerId && this.clock.now() < lease.startedAtMs + durationMs) this.clock.set(lease.startedAtMs + durationMs);
    return this.handle({
      kind: 'finished',
      connId: this.conns.get(peerId)!,
      leaseId,
      stepId,
      ok,
      exitCode: extra.exitCode === undefined ? (ok ? 0 : 1) : extra.exitCode,
      durationMs,
      logTail: extra.logTail ?? null,
    });
  }

  /** A lease as first written (granted); null for a lease never written. */
  leaseRow(leaseId: string): LeaseRecord | null {
    for (const w of this.writes) if (w.table === 'lease' && w.row.leaseId === leaseId) return w.row;
    return null;
  }

  disconnect(peerId: string): CoreOutput {
    return this.handle({ kind: 'disconnected', connId: this.conns.get(peerId)! });
  }

  bye(peerId: string): CoreOutput {
    return this.handle({ kind: 'bye', connId: this.conns.get(peerId)! });
  }

  tick(): CoreOutput {
    return this.handle({ kind: 'tick' });
  }

  /** Advances the clock and ticks. */
  advance(ms: number): CoreOutput {
    this.clock.advance(ms);
    return this.tick();
  }

  /** The assign most recently sent to this peer's current connection. */
  lastAssign(peerId: string): Extract<ServerMessage, { type: 'assign' }> | undefined {
    const msgs = this.sent(peerId).filter((m) => m.type === 'assign');
    return msgs[msgs.length - 1] as Extract<ServerMessage, { type: 'assign' }> | undefined;
  }

  /** Every v1 frame sent to this peer's current connection so far (the core's effects as the v1 socket renders them). */
  sent(peerId: string): ServerMessage[] {
    const connId = this.conns.get(peerId);
    return connId === undefined ? [] : v1MessagesFor(this.effects, connId);
  }
}

/** v1 frames sent to one connection in one output. */
export function messagesIn(out: CoreOutput, connId: number): ServerMessage[] {
  return v1MessagesFor(out.effects, connId);
}

/** All v1 frames in one output, as `[connId, message]`, in effect order. */
export function allSent(out: CoreOutput): [number, ServerMessage][] {
  return out.effects.flatMap((e) => {
    const conns = e.kind === 'step-changed' ? e.connIds : 'connId' in e ? [e.connId] : [];
    return conns.flatMap((connId) => v1Delivery(e).messages.map((m) => [connId, m] as [number, ServerMessage]));
  });
}

/** Applies writes to an in-memory snapshot, as the store would (for restart tests without SQLite). */
export function snapshotFromWrites(writes: readonly Write[]): Snapshot {
  const cohorts = new Map<string, Snapshot['cohorts'][number]>();
  const steps = new Map<string, Snapshot['steps'][number]>();
  const leases = new Map<string, Snapshot['leases'][number]>();
  const peers = new Map<string, Snapshot['peers'][number]>();
  const memos = new Map<string, Snapshot['memos'][number]>();
  const durations = new Map<string, Snapshot['durations'][number]>();
  const clone = <T>(v: T): T => structuredClone(v);
  for (const w of writes) {
    switch (w.table) {
      case 'cohort':
        cohorts.set(w.row.cohortId, clone(w.row));
        break;
      case 'step':
        steps.set(`${w.row.cohortId}/${w.row.stepId}`, clone(w.row));
        break;
      case 'lease':
        leases.set(w.row.leaseId, clone(w.row));
        break;
      case 'peer':
        peers.set(w.row.peerId, clone(w.row));
        break;
      case 'memo':
        memos.set(w.row.memoKey, clone(w.row));
        break;
      case 'memo.delete':
        memos.delete(w.memoKey);
        break;
      case 'duration':
        durations.set(w.row.durationKey, clone(w.row));
        break;
      default:
        break;
    }
  }
  // As every store loads them: a grant writes no step row (server/store/lease-events.ts).
  return foldLeasesIntoSteps({
    cohorts: [...cohorts.values()],
    steps: [...steps.values()],
    leases: [...leases.values()],
    peers: [...peers.values()],
    memos: [...memos.values()],
    durations: [...durations.values()],
  });
}
