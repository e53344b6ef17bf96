import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultCoreConfig, type CoreOutput } from '../server/core/core-types.js';
import type { Write } from '../server/core/records.js';
import { Scheduler } from '../server/core/scheduler.js';
import type { SqliteStore } from '../server/store/sqlite-store.js';
import { schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';
import { registration } from '../test/helpers/core-harness.js';

/**
 * The SQLite store's CPU per assignment in the shape of `npm run bench -- --peers 1000 --cohort-size 10
 * --steps 1000` (issue 17, docs/performance.md "The store per assignment"), the store alone: the real
 * core's writes for `--cohorts` cohorts of 10 peers × `--steps` zero-duration steps, every peer
 * finishing its step at once, `--per-commit` inputs per transaction (the authority commits once per
 * event-loop turn; its turns held about 166 inputs in that run), committed to a fresh file with WAL
 * checkpoints off (the authority checkpoints in a worker thread). Prints the CPU µs per assignment of
 * the commits (min and median of `--rounds`) and the WAL frames per commit; `--statements` adds each
 * statement's wall µs. `--against DIR` runs another checkout's store (built from its `server/`) on the
 * same writes, alternately, for before/after figures in one process.
 *
 * `npx tsx bench/store-cost-probe.ts [--cohorts 100] [--steps 1000] [--per-commit 166] [--rounds 5] [--against DIR] [--statements]`
 */
interface Options {
  cohorts: number;
  steps: number;
  perCommit: number;
  rounds: number;
  against: string | null;
  statements: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { cohorts: 100, steps: 1000, perCommit: 166, rounds: 5, against: null, statements: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--statements') {
      o.statements = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag}: needs a value`);
    if (flag === '--against') o.against = resolve(value);
    else if (flag === '--cohorts' || flag === '--steps' || flag === '--per-commit' || flag === '--rounds') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got "${value}"`);
      if (flag === '--cohorts') o.cohorts = n;
      else if (flag === '--steps') o.steps = n;
      else if (flag === '--per-commit') o.perCommit = n;
      else o.rounds = n;
    } else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

/** The batches the authority would commit: every cohort's hellos first, then finishes `perCommit` at a time. */
function batches(o: Options): Write[][] {
  const prefix = `l_${randomBytes(9).toString('base64url')}_`;
  let leases = 0;
  const scheduler = new Scheduler({ ...defaultCoreConfig }, { cohortId: () => `c_${randomBytes(9).toString('base64url')}`, leaseId: () => `${prefix}${(++leases).toString(36)}` });
  const schema = benchSchema(o.steps);
  const digest = schemaDigest(schema);
  let now = 1_700_000_000_000;
  const out: Write[][] = [];
  const granted: { connId: number; leaseId: string; stepId: string }[] = [];
  let batch: Write[] = [];
  const keep = (result: CoreOutput): void => {
    if (result.fault !== null) throw result.fault;
    batch.push(...result.writes);
    for (const e of result.effects) if (e.kind === 'granted') granted.push({ connId: e.connId, leaseId: e.leaseId, stepId: e.stepId });
  };
  let connId = 0;
  for (let c = 0; c < o.cohorts; c++) {
    for (let p = 0; p < 10; p++) {
      connId++;
      const fresh = { token: `t${connId}`, hash: `h${connId}` };
      const reg = registration({ patchsets: [`refs/changes/${c}`] });
      keep(scheduler.handle({ kind: 'hello', connId, peerId: `bench-${c}-${p}`, registration: reg, schema, digest, presentedToken: null, freshToken: fresh, currentStep: null, resumable: true }, now));
    }
  }
  out.push(batch);
  while (granted.length > 0) {
    batch = [];
    now += 1;
    for (const g of granted.splice(0, o.perCommit)) keep(scheduler.handle({ kind: 'finished', connId: g.connId, leaseId: g.leaseId, stepId: g.stepId, ok: true, exitCode: 0, durationMs: 0, logTail: null }, now));
    out.push(batch);
  }
  return out;
}

/** The flat schema every benchmark peer sends (bench/load-generator.ts `benchSchema`; importing that file would start a generator). */
function benchSchema(steps: number): SchemaDef {
  return { id: 'bench', universe: '//bench/...', steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i + 1}`, target: `//bench/s${i + 1}/...`, needs: [] })) };
}

type StoreClass = new (location: string, options?: object) => SqliteStore;
interface Timing {
  n: number;
  ns: bigint;
}

/** Wraps every prepared statement of the scheduler store to add up its wall time (`--statements`). */
function timeStatements(store: SqliteStore, into: Map<string, Timing>): void {
  const stmts = (store.scheduler as unknown as { stmt: Record<string, { run: (...a: unknown[]) => unknown; get: (...a: unknown[]) => unknown }> }).stmt;
  for (const [name, stmt] of Object.entries(stmts)) {
    const t = into.get(name) ?? { n: 0, ns: 0n };
    into.set(name, t);
    for (const method of ['run', 'get'] as const) {
      const call = stmt[method].bind(stmt);
      stmt[method] = (...args: unknown[]) => {
        const t0 = process.hrtime.bigint();
        try {
          return call(...args);
        } finally {
          t.n++;
          t.ns += process.hrtime.bigint() - t0;
        }
      };
    }
  }
}

const o = parseOptions(process.argv.slice(2));
const writes = batches(o);
const assignments = writes.flat().filter((w) => w.table === 'lease' && w.row.end === null).length;
const here = resolve(import.meta.dirname, '..');
const roots = o.against === null ? [here] : [o.against, here];
const classes: StoreClass[] = [];
for (const root of roots) classes.push(((await import(pathToFileURL(join(root, 'server/store/sqlite-store.ts')).href)) as { SqliteStore: StoreClass }).SqliteStore);
const cpu: number[][] = roots.map(() => []);
const frames: number[] = roots.map(() => 0);
const timings = roots.map(() => new Map<string, Timing>());
for (let round = 0; round < o.rounds; round++) {
  classes.forEach((Store, i) => {
    const dir = mkdtempSync(join(tmpdir(), 'taskshard-store-cost-'));
    const store = new Store(join(dir, 'probe.db'));
    store.db.pragma('wal_autocheckpoint = 0');
    if (o.statements) timeStatements(store, timings[i]!);
    const cpu0 = process.cpuUsage();
    for (const batch of writes) void store.scheduler.apply(batch);
    const used = process.cpuUsage(cpu0);
    frames[i] = (statSync(join(dir, 'probe.db-wal')).size - 32) / 4120 / writes.length;
    store.close();
    rmSync(dir, { recursive: true, force: true });
    cpu[i]!.push((used.user + used.system) / assignments);
  });
}
const fixed = (v: number): string => v.toFixed(1);
console.log(`${o.cohorts} cohorts x 10 peers x ${o.steps} steps: ${assignments} assignments in ${writes.length} commits (${o.perCommit} inputs per commit), ${o.rounds} rounds`);
roots.forEach((root, i) => {
  const sorted = [...cpu[i]!].sort((a, b) => a - b);
  console.log(`${root}: CPU µs per assignment min ${fixed(sorted[0]!)}, median ${fixed(sorted[Math.floor(sorted.length / 2)]!)} [${cpu[i]!.map(fixed).join(' ')}]; ${fixed(frames[i]!)} WAL frames per commit`);
  for (const [name, t] of timings[i]!) if (t.n > 0) console.log(`  ${name}: ${t.n / o.rounds} calls per run, ${(Number(t.ns) / 1000 / t.n).toFixed(2)} µs each, ${(Number(t.ns) / 1000 / t.n * t.n / o.rounds / assignments).toFixed(2)} µs per assignment`);
});
