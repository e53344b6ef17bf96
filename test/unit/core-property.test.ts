import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultCoreConfig, type CoreOutput } from '../../server/core/core-types.js';
import type { LeaseRecord, PeerRecord, StepRecord } from '../../server/core/records.js';
import { Scheduler } from '../../server/core/scheduler.js';
import { serverMessageSchema } from '../../shared/protocol.js';
import { schemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { allSent, counterIds, registration } from '../helpers/core-harness.js';
import { dagSchema, flatSchema } from '../helpers/schemas.js';

/**
 * Property test of the scheduler against a small model of what peers know.
 * Random sequences of joins, completions (good, failed and stale), drops,
 * resumes, byes, time passing and admin actions; after every step the
 * invariants of DESIGN §6-§7 must hold:
 *   - at most one live lease per step, except a backup copy (then two, the later marked backup);
 *   - a step is `leased` iff it has a live lease, and no live lease belongs to a gone peer;
 *   - `succeeded` is final and recorded once; attempt numbers of a step only rise;
 *   - no peer holds two live leases;
 *   - no step is lost: an open cohort never has an idle connected peer while a step it
 *     could run (needs met, not failed by it) sits pending;
 *   - every frame sent is a valid protocol-v1 message;
 * plus every invariant of server/core/invariants.ts over all state (among them:
 * a pending step has no failed need; an open cohort with nothing running and a
 * connected idle member has an assignable step; derived counters equal a recount),
 * and the core never faults (the per-input check inside `handle` would roll back).
 * With the fix for issue 10's defect 1 reverted (dependents reopened whatever
 * their other needs), this test fails after 227 runs at the default seed and
 * shrinks to: join (dag), finish failed, finish failed, retry.
 */

const schemas: SchemaDef[] = [flatSchema(3, 'flat'), dagSchema({ a: [], b: ['a'], c: [], d: ['b', 'c'] }, { a: 5, c: 1 }, 'dag')];
const peerIds = ['p0', 'p1', 'p2', 'p3'];

type Action =
  | { kind: 'join'; peer: number; schema: number; variant: number }
  | { kind: 'finish'; peer: number; ok: boolean }
  | { kind: 'stale'; peer: number; pick: number }
  | { kind: 'drop'; peer: number }
  | { kind: 'resume'; peer: number; keepStep: boolean }
  | { kind: 'bye'; peer: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'cancel'; pick: number }
  | { kind: 'retry'; pick: number };

const peer = fc.integer({ min: 0, max: peerIds.length - 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('join' as const), peer, schema: fc.integer({ min: 0, max: 1 }), variant: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('finish' as const), peer, ok: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stale' as const), peer, pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), peer }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resume' as const), peer, keepStep: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bye' as const), peer }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(1_000, 20_000, 35_000, 61_000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }) },
);

interface ModelPeer {
  connId: number | null;
  token: string | null;
  /** The lease this peer is running (as far as the peer knows). */
  running: { leaseId: string; stepId: string } | null;
  done: boolean;
  schema: number;
  variant: number;
}

class World {
  readonly scheduler: Scheduler;
  constructor(maxFailures: number) {
    this.scheduler = new Scheduler({ ...defaultCoreConfig, stragglerMinMs: 30_000, maxFailures }, counterIds());
  }
  now = 1_000_000;
  private nextConn = 1;
  readonly peers = new Map<string, ModelPeer>();
  readonly steps = new Map<string, StepRecord>();
  readonly stepHistory = new Map<string, string[]>();
  readonly leases = new Map<string, LeaseRecord>();
  readonly leaseOrder: string[] = [];
  readonly peerRows = new Map<string, PeerRecord>();
  readonly cohortStatus = new Map<string, string>();
  readonly cohortSchema = new Map<string, SchemaDef>();
  readonly successes = new Map<string, number>();

  run(a: Action): void {
    switch (a.kind) {
      case 'join': {
        const id = peerIds[a.peer]!;
        const known = this.peers.get(id);
        if (known && (known.connId !== null || (this.peerRows.get(id)?.status === 'disconnected'))) return;
        this.hello(id, a.schema, a.variant, null, null);
        return;
      }
      case 'finish': {
        const id = peerIds[a.peer]!;
        const p = this.peers.get(id);
        if (!p || p.connId === null || !p.running) return;
        const { leaseId, stepId } = p.running;
        p.running = null;
        this.apply(
          this.scheduler.handle({ kind: 'finished', connId: p.connId, leaseId, stepId, ok: a.ok, exitCode: a.ok ? 0 : 2, durationMs: 1_000, logTail: a.ok ? null : 'boom' }, this.now),
        );
        return;
      }
      case 'stale': {
        const id = peerIds[a.peer]!;
        const p = this.peers.get(id);
        if (!p || p.connId === null || this.leaseOrder.length === 0) return;
        const lease = this.leases.get(this.leaseOrder[a.pick % this.leaseOrder.length]!)!;
        if (p.running?.leaseId === lease.leaseId) return;
        this.apply(
          this.scheduler.handle({ kind: 'finished', connId: p.connId, leaseId: lease.leaseId, stepId: lease.stepId, ok: true, exitCode: 0, durationMs: 5, logTail: null }, this.now),
        );
        return;
      }
      case 'drop': {
        const id = peerIds[a.peer]!;
        const p = this.peers.get(id);
        if (!p || p.connId === null) return;
        const connId = p.connId;
        p.connId = null;
        this.apply(this.scheduler.handle({ kind: 'disconnected', connId }, this.now));
        return;
      }
      case 'resume': {
        const id = peerIds[a.peer]!;
        const p = this.peers.get(id);
        if (!p || p.connId !== null || p.done) return;
        if (!a.keepStep) p.running = null;
        this.hello(id, p.schema, p.variant, p.token, p.running);
        return;
      }
      case 'bye': {
        const id = peerIds[a.peer]!;
        const p = this.peers.get(id);
        if (!p || p.connId === null) return;
        const connId = p.connId;
        p.connId = null;
        p.running = null;
        p.done = true;
        this.apply(this.scheduler.handle({ kind: 'bye', connId }, this.now));
        return;
      }
      case 'advance':
        this.now += a.ms;
        this.apply(this.scheduler.handle({ kind: 'tick' }, this.now));
        return;
      case 'cancel':
      case 'retry': {
        const cohorts = [...this.cohortStatus.keys()];
        if (cohorts.length === 0) return;
        const cohortId = cohorts[a.pick % cohorts.length]!;
        if (a.kind === 'cancel') {
          this.apply(this.scheduler.handle({ kind: 'cancel', cohortId }, this.now));
        } else {
          const failed = [...this.steps.values()].filter((s) => s.cohortId === cohortId && s.status === 'failed');
          if (failed.length === 0) return;
          this.apply(this.scheduler.handle({ kind: 'retry', cohortId, stepId: failed[a.pick % failed.length]!.stepId }, this.now));
        }
        return;
      }
    }
  }

  private hello(id: string, schemaIndex: number, variant: number, token: string | null, running: ModelPeer['running']): void {
    const connId = this.nextConn++;
    const schema = schemas[schemaIndex]!;
    const fresh = `t${connId}`;
    const model: ModelPeer = this.peers.get(id) ?? { connId, token: null, running: null, done: false, schema: schemaIndex, variant };
    model.connId = connId;
    model.running = running;
    this.peers.set(id, model);
    const out = this.scheduler.handle(
      {
        kind: 'hello',
        connId,
        peerId: id,
        registration: registration({
          patchsets: [['A'], ['A', 'B'], ['C']][variant % 3]!,
          pipelineType: variant % 2 === 0 ? 'independent' : 'dependent',
          isolated: variant === 5,
          baseSha: variant === 4 ? 'f'.repeat(40) : null,
        }),
        schema,
        digest: schemaDigest(schema),
        presentedToken: token === null ? null : { token, hash: `h${token}` },
        freshToken: { token: fresh, hash: `h${fresh}` },
        currentStep: running,
        resumable: true,
        // Half the connections take targeted updates (the success-listener index is checked after every input).
        targetedUpdates: connId % 2 === 0,
      },
      this.now,
    );
    this.apply(out);
  }

  apply(out: CoreOutput): void {
    if (out.fault !== null) throw out.fault; // an illegal transition or a broken invariant inside the core
    for (const w of out.writes) {
      switch (w.table) {
        case 'cohort':
          this.cohortStatus.set(w.row.cohortId, w.row.status);
          this.cohortSchema.set(w.row.cohortId, w.row.schema);
          break;
        case 'step': {
          const key = `${w.row.cohortId}/${w.row.stepId}`;
          const before = this.steps.get(key);
          // A success is the write that makes a step succeeded; a succeeded step's row may be written again
          // (its counters), never with another builder, time or duration (the stores' guard).
          if (w.row.status === 'succeeded' && before?.status !== 'succeeded') this.successes.set(key, (this.successes.get(key) ?? 0) + 1);
          if (before?.status === 'succeeded') {
            const success = (r: StepRecord) => ({ status: r.status, builtBy: r.builtBy, fromMemo: r.fromMemo, durationMs: r.durationMs, resolvedAtMs: r.resolvedAtMs });
            expect(success(w.row), `${key} rewritten after its success`).toEqual(success(before));
          }
          this.steps.set(key, { ...w.row, failedOn: [...w.row.failedOn] });
          const history = this.stepHistory.get(key) ?? [];
          history.push(w.row.status);
          this.stepHistory.set(key, history);
          break;
        }
        case 'lease':
          if (!this.leases.has(w.row.leaseId)) this.leaseOrder.push(w.row.leaseId);
          this.leases.set(w.row.leaseId, { ...w.row });
          break;
        case 'peer':
          this.peerRows.set(w.row.peerId, { ...w.row });
          break;
        default:
          break;
      }
    }
    for (const [connId, m] of allSent(out)) {
      const parsed = serverMessageSchema.safeParse(m);
      if (!parsed.success) throw new Error(`invalid frame ${JSON.stringify(m)}: ${parsed.error.message}`);
      const owner = [...this.peers.entries()].find(([, p]) => p.connId === connId);
      if (!owner) continue;
      const [, p] = owner;
      if (m.type === 'assign') {
        if (p.running) throw new Error(`assign to ${owner[0]} while it runs ${p.running.leaseId}`);
        p.running = { leaseId: m.leaseId, stepId: m.stepId };
      } else if (m.type === 'abort' && p.running?.leaseId === m.leaseId) {
        p.running = null;
      } else if (m.type === 'complete') {
        p.done = true;
      }
    }
  }

  check(): void {
    const liveByStep = new Map<string, LeaseRecord[]>();
    const liveByPeer = new Map<string, number>();
    for (const id of this.leaseOrder) {
      const lease = this.leases.get(id)!;
      if (lease.end !== null) continue;
      const key = `${lease.cohortId}/${lease.stepId}`;
      liveByStep.set(key, [...(liveByStep.get(key) ?? []), lease]);
      liveByPeer.set(lease.peerId, (liveByPeer.get(lease.peerId) ?? 0) + 1);
      const holder = this.peerRows.get(lease.peerId);
      expect(holder?.status === 'connected' || holder?.status === 'disconnected', `live lease ${id} held by a ${holder?.status} peer`).toBe(true);
    }
    for (const [key, live] of liveByStep) {
      expect(live.length, `live leases of ${key}`).toBeLessThanOrEqual(2);
      if (live.length === 2) expect(live[1]!.backup, `second live lease of ${key} is marked backup`).toBe(true);
    }
    for (const [peerId, n] of liveByPeer) expect(n, `live leases of ${peerId}`).toBe(1);
    // A grant writes no step row: as the stores read it, a pending row with a live lease is leased (server/store/lease-events.ts).
    const statusOf = (key: string): string => {
      const status = this.steps.get(key)!.status;
      return status === 'pending' && liveByStep.has(key) ? 'leased' : status;
    };
    for (const [key, step] of this.steps) {
      expect(statusOf(key) === 'leased', `${key} leased iff live lease`).toBe(liveByStep.has(key));
      const history = this.stepHistory.get(key)!;
      const firstSuccess = history.indexOf('succeeded');
      if (firstSuccess >= 0) expect(history.slice(firstSuccess).every((s) => s === 'succeeded'), `${key} history ${history}`).toBe(true);
      expect(this.successes.get(key) ?? 0, `${key} successes`).toBe(step.status === 'succeeded' ? 1 : 0);
    }
    const attemptsByStep = new Map<string, number>();
    for (const id of this.leaseOrder) {
      const lease = this.leases.get(id)!;
      const key = `${lease.cohortId}/${lease.stepId}`;
      expect(lease.attempt, `attempts of ${key}`).toBeGreaterThan(attemptsByStep.get(key) ?? 0);
      attemptsByStep.set(key, lease.attempt);
    }
    for (const [key, step] of this.steps) expect(step.attempts, `${key} attempts as stored never exceed its leases'`).toBeLessThanOrEqual(attemptsByStep.get(key) ?? 0);
    // No step lost: an idle connected peer of an open cohort is never left waiting next to work it could do.
    for (const [peerId, p] of this.peers) {
      const row = this.peerRows.get(peerId);
      if (!row || row.status !== 'connected' || p.connId === null || p.running || p.done) continue;
      if (this.cohortStatus.get(row.cohortId) !== 'open') continue;
      const schema = this.cohortSchema.get(row.cohortId)!;
      for (const def of schema.steps) {
        const step = this.steps.get(`${row.cohortId}/${def.id}`)!;
        if (statusOf(`${row.cohortId}/${def.id}`) !== 'pending' || step.failedOn.includes(peerId)) continue;
        const needsMet = def.needs.every((n) => this.steps.get(`${row.cohortId}/${n}`)!.status === 'succeeded');
        expect(needsMet, `${peerId} idle while ${row.cohortId}/${def.id} is assignable`).toBe(false);
      }
    }
  }
}

describe('scheduler properties', () => {
  const runs = process.env.TASKSHARD_SOAK === '1' ? 100_000 : 10_000;
  it(`keeps its invariants over random histories (${runs} runs)`, { timeout: 600_000 }, () => {
    fc.assert(
      // maxFailures 1 makes steps fail for the cohort often, so admin retries meet partly failed DAGs.
      fc.property(fc.constantFrom(1, 2), fc.array(action, { minLength: 1, maxLength: 40 }), (maxFailures, actions) => {
        const world = new World(maxFailures);
        for (const a of actions) {
          world.run(a);
          world.check();
          world.scheduler.checkInvariants();
        }
      }),
      { numRuns: runs, seed: Number(process.env.TASKSHARD_SEED ?? 20261122) },
    );
  });
});
