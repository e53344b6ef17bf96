import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CoreConfig, CoreInput, CoreOutput, Effect, IdSource } from '../server/core/core-types.js';
import type { Registration, Snapshot } from '../server/core/records.js';
import { schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';

/**
 * `npx tsx bench/sched-differential.ts --old DIR [--new DIR] [--runs N] [--inputs N] [--seed S]`:
 * a differential test of two builds of the scheduler core (each DIR a built tree holding
 * `server/core/scheduler.js`, e.g. a scratch copy of main's `dist/` and this tree's `dist/`).
 * Both are driven with the same random inputs (joins in several cohorts and pipelines, labelled
 * schemas, reports good, failed, unpublished, stale and naming no lease, drops, resumes with either
 * token, byes, time passing past straggler, grace, lease-age and sweep deadlines, admin cancel and
 * retry, drain), and an id source that sometimes throws, so inputs are rolled back midway. After
 * every input both outputs (writes, effects, admin answer, fault message), `nextDeadlineMs()` and the
 * gauges must be equal, and every so often the whole state (`dump()`) and the new core's full
 * invariant check. The first difference stops the run with the seed, the input and both outputs.
 * A performance change to the core that should change nothing observable is run through this
 * against the build before it (docs/performance.md, "The scheduler core per assignment").
 */

interface SchedulerLike {
  handle(input: CoreInput, now: number): CoreOutput;
  nextDeadlineMs(): number | null;
  counts(): { peersConnected: number; cohortsOpen: number; leasesLive: number };
  dump(): Snapshot;
  restore(snapshot: Snapshot, now: number): CoreOutput;
  checkInvariants(): void;
}
type SchedulerClass = new (config: CoreConfig, ids: IdSource) => SchedulerLike;

/** mulberry32: a small seeded PRNG, so a failing seed replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const schemas: SchemaDef[] = [
  { id: 'flat', universe: '//...', steps: Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, target: `//s${i}/...`, needs: [] })) },
  {
    id: 'dag',
    universe: '//...',
    steps: [
      { id: 'a', target: '//a/...', needs: [], estimateSec: 5 },
      { id: 'b', target: '//b/...', needs: ['a'] },
      { id: 'c', target: '//c/...', needs: [], estimateSec: 1 },
      { id: 'd', target: '//d/...', needs: ['b', 'c'] },
      { id: 'e', target: '//e/...', needs: ['a'], estimateSec: 2 },
    ],
  },
  {
    id: 'labelled',
    universe: '//...',
    steps: [
      { id: 'cpu', target: '//cpu/...', needs: [] },
      { id: 'gpu', target: '//gpu/...', needs: [], requires: ['gpu'] },
      { id: 'arm', target: '//arm/...', needs: [], requires: ['arch:arm64'], estimateSec: 3 },
      { id: 'both', target: '//both/...', needs: ['gpu'], requires: ['gpu', 'arch:arm64'] },
      { id: 'tail', target: '//tail/...', needs: ['cpu'] },
    ],
  },
];
const digests = schemas.map((s) => schemaDigest(s));
const labelChoices: (readonly string[] | undefined)[] = [undefined, ['gpu'], ['arch:arm64'], ['arch:arm64', 'gpu'], []];

interface ModelPeer {
  connId: number | null;
  token: string | null;
  registrationToken: string | null;
  running: { leaseId: string; stepId: string } | null;
  schema: number;
  variant: number;
  labels: number;
  targeted: boolean;
  resumable: boolean;
}

/** Sorted-key JSON, so two builds that make the same rows with fields in another order compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Error) return { error: v.name, message: v.message };
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = (v as Record<string, unknown>)[k];
      return out;
    }
    return v;
  });
}

class Pair {
  old: SchedulerLike;
  new: SchedulerLike;
  private readonly failIds: { fail: boolean }[];
  private generation = 0;
  constructor(
    private readonly OldClass: SchedulerClass,
    private readonly NewClass: SchedulerClass,
    private readonly config: CoreConfig,
  ) {
    this.failIds = [{ fail: false }, { fail: false }];
    this.old = new OldClass(config, this.ids(this.failIds[0]!));
    this.new = new NewClass(config, this.ids(this.failIds[1]!));
  }
  private ids(flag: { fail: boolean }): IdSource {
    let c = 0;
    let l = 0;
    const g = this.generation;
    return {
      cohortId: () => `c${g}-${++c}`,
      leaseId: () => {
        if (flag.fail) throw new Error('injected: no lease id');
        return `l${g}-${++l}`;
      },
    };
  }
  /** A restart: both builds restore from the old build's state; returns both restore outputs. */
  restart(now: number): [CoreOutput, CoreOutput] {
    const snapshot = this.old.dump();
    this.generation++;
    this.old = new this.OldClass(this.config, this.ids(this.failIds[0]!));
    this.new = new this.NewClass(this.config, this.ids(this.failIds[1]!));
    return [this.old.restore(snapshot, now), this.new.restore(snapshot, now)];
  }
  /** Whether lease ids throw (both builds alike): a grant then fails and its input is rolled back. */
  setFailing(fail: boolean): void {
    for (const f of this.failIds) f.fail = fail;
  }
}

export interface DifferentialResult {
  readonly inputs: number;
  readonly faults: number;
  readonly grants: number;
  /** Events written, by kind (what the random inputs reached). */
  readonly events: ReadonlyMap<string, number>;
}

/** One run: `inputs` random inputs into both builds; throws at the first difference. */
export function runDifferential(OldClass: SchedulerClass, NewClass: SchedulerClass, seed: number, inputs: number): DifferentialResult {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const config: CoreConfig = {
    leaseGraceMs: pick([0, 5_000, 60_000]),
    memoTtlMs: pick([10_000, 3600_000]),
    defaultEstimateMs: 60_000,
    stragglerFactor: pick([0, 2]),
    stragglerMinMs: pick([1_000, 30_000]),
    maxFailures: pick([1, 2, 3]),
    maxLostLeases: pick([1, 3]),
    maxLeaseAgeMs: pick([null, null, 50_000]),
    leaseAgeFactor: 4,
    minLeaseAgeMs: pick([1_000, 600_000]),
    unknownLeaseAgeMs: pick([90_000, 7200_000]),
    peerDurationSlackMs: 5_000,
    durationAlpha: 0.3,
    cohortRetentionMs: pick([30_000, 3600_000]),
    idleCohortTtlMs: pick([20_000, 3600_000]),
    maxOpenCohortsPerSource: pick([3, 256]),
    maxStepsPerSource: pick([12, 100_000]),
    sweepIntervalMs: pick([5_000, 60_000]),
    sweepBatch: pick([1, 200]),
    pingIntervalMs: 15_000,
  };
  const pair = new Pair(OldClass, NewClass, config);
  const peerCount = 3 + Math.floor(rand() * 8);
  const peers = new Map<string, ModelPeer>();
  const cohortIds: string[] = [];
  const leaseIds: string[] = [];
  let now = 1_000_000;
  let nextConn = 1;
  let faults = 0;
  let grants = 0;
  const history: string[] = [];
  const events = new Map<string, number>();

  const regOf = (m: ModelPeer): Registration => ({
    repo: m.variant === 6 ? 'git@example.com:acme/other.git' : 'git@example.com:acme/mono.git',
    baseRef: 'main',
    baseSha: m.variant % 4 === 3 ? 'f'.repeat(40) : null,
    patchsets: [['A'], ['A', 'B'], ['C'], ['A']][m.variant % 4]!,
    changeRef: null,
    pipelineName: 'check',
    pipelineType: m.variant % 2 === 0 ? 'independent' : 'dependent',
    isolated: m.variant === 5,
    cacheId: 'cache-1',
    ...(labelChoices[m.labels] === undefined ? {} : { labels: [...labelChoices[m.labels]!] }),
  });

  const step = (input: CoreInput): void => {
    history.push(canonical(input));
    if (history.length > 12) history.shift();
    const failing = input.kind !== 'tick' && rand() < 0.03;
    pair.setFailing(failing);
    const a = pair.old.handle(input, now);
    const b = pair.new.handle(input, now);
    pair.setFailing(false);
    const ca = canonical({ ...a, fault: a.fault === null ? null : String((a.fault as Error).message) });
    const cb = canonical({ ...b, fault: b.fault === null ? null : String((b.fault as Error).message) });
    if (ca !== cb) throw new Error(`seed ${seed}: outputs differ at input ${canonical(input)} (now ${now})\nlast inputs:\n${history.join('\n')}\nold: ${ca}\nnew: ${cb}`);
    const da = pair.old.nextDeadlineMs();
    const db = pair.new.nextDeadlineMs();
    if (da !== db) throw new Error(`seed ${seed}: nextDeadlineMs differs after ${canonical(input)}: old ${da}, new ${db}\nlast inputs:\n${history.join('\n')}`);
    const ga = canonical(pair.old.counts());
    const gb = canonical(pair.new.counts());
    if (ga !== gb) throw new Error(`seed ${seed}: counts differ after ${canonical(input)}: old ${ga}, new ${gb}`);
    if (a.fault !== null) faults++;
    observe(a.effects);
    for (const w of a.writes) {
      if (w.table === 'cohort' && !cohortIds.includes(w.row.cohortId)) cohortIds.push(w.row.cohortId);
      if (w.table === 'event') events.set(w.row.kind, (events.get(w.row.kind) ?? 0) + 1);
    }
  };

  const observe = (effects: readonly Effect[]): void => {
    for (const e of effects) {
      if (e.kind === 'granted') {
        grants++;
        leaseIds.push(e.leaseId);
        for (const m of peers.values()) if (m.connId === e.connId) m.running = { leaseId: e.leaseId, stepId: e.stepId };
      } else if (e.kind === 'abort') {
        for (const m of peers.values()) if (m.connId === e.connId && m.running?.leaseId === e.leaseId) m.running = null;
      } else if (e.kind === 'joined') {
        for (const m of peers.values()) if (m.connId === e.connId) m.token = e.resumeToken;
      } else if (e.kind === 'refuse' || e.kind === 'superseded') {
        for (const m of peers.values()) if (m.connId === e.connId && e.kind === 'superseded') m.connId = null;
      }
    }
  };

  const hello = (id: string, m: ModelPeer, resume: 'none' | 'token' | 'registration' | 'wrong'): void => {
    const connId = nextConn++;
    m.connId = connId;
    const schema = schemas[m.schema]!;
    const fresh = m.registrationToken ?? `t${connId}`;
    const presented = resume === 'token' && m.token !== null ? m.token : resume === 'wrong' ? 'nope' : null;
    step({
      kind: 'hello',
      connId,
      peerId: id,
      registration: regOf(m),
      schema,
      digest: digests[m.schema]!,
      presentedToken: presented === null ? null : { token: presented, hash: `h${presented}` },
      freshToken: { token: fresh, hash: `h${fresh}` },
      ...(resume === 'registration' && m.registrationToken !== null ? { registrationToken: { token: m.registrationToken, hash: `h${m.registrationToken}` } } : {}),
      currentStep: m.running,
      resumable: m.resumable,
      targetedUpdates: m.targeted,
    });
  };

  for (let i = 0; i < inputs; i++) {
    const id = `p${Math.floor(rand() * peerCount)}`;
    let m = peers.get(id);
    const r = rand();
    if (!m || (m.connId === null && r < 0.25)) {
      const fresh = !m || rand() < 0.3;
      if (fresh) {
        m = {
          connId: null,
          token: null,
          registrationToken: rand() < 0.3 ? `r-${id}-${i}` : null,
          running: null,
          schema: Math.floor(rand() * schemas.length),
          variant: Math.floor(rand() * 7),
          labels: Math.floor(rand() * labelChoices.length),
          targeted: rand() < 0.6,
          resumable: rand() < 0.9,
        };
        peers.set(id, m);
      }
      if (rand() < 0.3) m!.running = null;
      hello(id, m!, fresh ? 'none' : pick(['token', 'token', 'registration', 'wrong', 'none'] as const));
      continue;
    }
    if (r < 0.55 && m.connId !== null) {
      const kind = rand();
      const held = m.running;
      if (kind < 0.8 && held !== null) {
        const ok = rand() < 0.75;
        m.running = null;
        step({
          kind: 'finished',
          connId: m.connId,
          leaseId: rand() < 0.1 ? null : held.leaseId,
          stepId: held.stepId,
          ok,
          exitCode: ok ? 0 : 2,
          durationMs: pick([null, 0, 500, 2_000, 10 ** 9]),
          logTail: ok ? null : 'boom',
          ...(!ok && rand() < 0.3 ? { unpublished: true } : {}),
        });
      } else if (leaseIds.length > 0) {
        const leaseId = pick(leaseIds);
        step({ kind: 'finished', connId: m.connId, leaseId, stepId: rand() < 0.8 ? (held?.stepId ?? 's0') : 'zz', ok: rand() < 0.7, exitCode: 0, durationMs: 5, logTail: null });
      }
      continue;
    }
    if (r < 0.63 && m.connId !== null) {
      const connId = m.connId;
      m.connId = null;
      step({ kind: 'disconnected', connId });
      continue;
    }
    if (r < 0.66 && m.connId !== null) {
      const connId = m.connId;
      m.connId = null;
      m.running = null;
      step({ kind: 'bye', connId });
      continue;
    }
    if (r < 0.85) {
      now += pick([1, 10, 1_000, 1_500, 6_000, 31_000, 61_000, 130_000]);
      step({ kind: 'tick' });
      continue;
    }
    if (r < 0.9 && cohortIds.length > 0) {
      step({ kind: 'cancel', cohortId: pick(cohortIds) });
      continue;
    }
    if (r < 0.97 && cohortIds.length > 0) {
      const cohortId = pick(cohortIds);
      const stepIds = pick(schemas).steps.map((s) => s.id);
      step({ kind: 'retry', cohortId, stepId: pick(stepIds) });
      continue;
    }
    if (r < 0.972 && i > inputs * 0.8) {
      step({ kind: 'drain' });
      continue;
    }
    if (r < 0.976) {
      const [a, b] = pair.restart(now);
      const ca = canonical(a);
      const cb = canonical(b);
      if (ca !== cb) throw new Error(`seed ${seed}: restore outputs differ at input ${i}\nold: ${ca}\nnew: ${cb}`);
      for (const peer of peers.values()) peer.connId = null;
      continue;
    }
    now += 1;
    step({ kind: 'tick' });
    if (i % 50 === 0) {
      const sa = canonical(pair.old.dump());
      const sb = canonical(pair.new.dump());
      if (sa !== sb) throw new Error(`seed ${seed}: state differs after input ${i}`);
      pair.new.checkInvariants();
    }
  }
  const sa = canonical(pair.old.dump());
  const sb = canonical(pair.new.dump());
  if (sa !== sb) throw new Error(`seed ${seed}: state differs at the end`);
  pair.new.checkInvariants();
  return { inputs, faults, grants, events };
}

async function loadScheduler(dir: string): Promise<SchedulerClass> {
  const mod = (await import(pathToFileURL(resolve(dir, 'server/core/scheduler.js')).href)) as { Scheduler: SchedulerClass };
  return mod.Scheduler;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { old: { type: 'string' }, new: { type: 'string' }, runs: { type: 'string' }, inputs: { type: 'string' }, seed: { type: 'string' } } });
  if (values.old === undefined) {
    process.stderr.write('usage: npx tsx bench/sched-differential.ts --old DIR [--new DIR] [--runs N] [--inputs N] [--seed S]\n  DIR: a built tree (e.g. a scratch copy of main\'s dist/); --new defaults to this tree\'s dist/\n');
    return 2;
  }
  const runs = Number(values.runs ?? 200);
  const inputs = Number(values.inputs ?? 400);
  const seed0 = Number(values.seed ?? 1);
  for (const [flag, n] of [['--runs', runs], ['--inputs', inputs], ['--seed', seed0]] as const) {
    if (!Number.isInteger(n) || n < 0) {
      process.stderr.write(`sched-differential: ${flag} must be a whole number, got ${String(n)}\n`);
      return 2;
    }
  }
  const OldClass = await loadScheduler(values.old);
  const NewClass = await loadScheduler(values.new ?? 'dist');
  let faults = 0;
  let grants = 0;
  const events = new Map<string, number>();
  for (let r = 0; r < runs; r++) {
    const res = runDifferential(OldClass, NewClass, seed0 + r, inputs);
    faults += res.faults;
    grants += res.grants;
    for (const [kind, n] of res.events) events.set(kind, (events.get(kind) ?? 0) + n);
  }
  process.stdout.write(`sched-differential: ${runs} runs x ${inputs} inputs (seeds ${seed0}..${seed0 + runs - 1}): equal outputs, deadlines, gauges and state; ${grants} grants, ${faults} inputs rolled back\n`);
  const reached = [...events].sort((a, b) => a[0].localeCompare(b[0])).map(([kind, n]) => `${kind} ${n}`);
  process.stdout.write(`events reached: ${reached.join(', ')}\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
