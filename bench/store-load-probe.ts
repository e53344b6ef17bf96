import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CohortRecord, Registration, StepRecord, Write } from '../server/core/records.js';
import type { Snapshot } from '../server/core/records.js';
import { schemaDigest } from '../shared/schema-digest.js';
import type { SchemaDef } from '../shared/schema-file.js';

/**
 * The SQLite store's start-up load alone (issue 11, docs/performance.md "Restart"): a file holding
 * `--recent` finished cohorts inside the retention window (what a restart restores) and `--history`
 * outside it (what it skips), each as the authority writes one of 3 peers × 4 steps (cohort, steps,
 * leases, peers; events as lease seqs), written by the first tree's store. Each round opens the file
 * with each tree's store and loads it (open + migrate + `load`, what a restart does before the core
 * restores), alternately; the first open of a tree that migrates the file is reported apart. CPU and
 * wall ms per load, min and median of `--rounds`. `--against DIR` is the other checkout (its
 * `server/`); its copy of the file is written by it and migrated by this tree on first open.
 *
 * `npx tsx bench/store-load-probe.ts [--recent 2000] [--history 20000] [--rounds 7] [--against DIR]`
 */
interface Options {
  recent: number;
  history: number;
  rounds: number;
  against: string | null;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { recent: 2000, history: 20_000, rounds: 7, against: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag}: needs a value`);
    if (flag === '--against') o.against = resolve(value);
    else if (flag === '--recent' || flag === '--history' || flag === '--rounds') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < (flag === '--rounds' ? 1 : 0)) throw new Error(`${flag}: expected a ${flag === '--rounds' ? 'positive' : 'non-negative'} integer, got "${value}"`);
      if (flag === '--recent') o.recent = n;
      else if (flag === '--history') o.history = n;
      else o.rounds = n;
    } else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

interface StoreLike {
  readonly db: { pragma(text: string): unknown };
  readonly scheduler: { apply(writes: readonly Write[]): void | Promise<void>; load(nowMs: number, retentionMs: number): Snapshot | Promise<Snapshot> };
  close(): void;
}
type StoreClass = new (location: string, options?: object) => StoreLike;

const retentionMs = 20_000;
const schema: SchemaDef = { id: 'day', universe: '//...', steps: Array.from({ length: 4 }, (_, i) => ({ id: `s${i + 1}`, target: `//s${i + 1}/...`, needs: [] })) };
const digest = schemaDigest(schema);

/** One finished cohort of 3 peers × 4 steps as the authority writes it, resolved at `at`. */
function cohortWrites(id: string, at: number): Write[] {
  const sha = 'f'.repeat(40);
  const cohort: CohortRecord = {
    cohortId: id, repo: 'https://example.com/bench/monorepo.git', baseRef: 'main', cacheId: 'bench-cache', pipelineType: 'independent', isolated: false,
    schema, digest, baseSha: sha, patchsets: [], cohortKey: null, status: 'complete', createdAtMs: at - 5000, resolvedAtMs: at, lastActivityMs: at, secondsSaved: 15, outcome: { kind: 'succeeded' },
  };
  const out: Write[] = [{ table: 'cohort', row: cohort, created: true }];
  for (let p = 0; p < 3; p++) {
    const registration: Registration = { repo: cohort.repo, baseRef: 'main', baseSha: sha, patchsets: [], changeRef: null, pipelineName: 'check', pipelineType: 'independent', isolated: false, cacheId: 'bench-cache' };
    out.push({ table: 'peer', row: { peerId: `${id}-${p}`, cohortId: id, tokenHash: 'x'.repeat(64), registration, resumable: true, status: 'left', joinedAtMs: at - 5000 + p, graceEndsAtMs: null } });
  }
  schema.steps.forEach((def, s) => {
    const peerId = `${id}-${s % 3}`;
    const leaseId = `${id}-l${s}`;
    const step: StepRecord = {
      cohortId: id, stepId: def.id, status: 'succeeded', attempts: 1, failures: 0, lostLeases: 0, failedOn: [], builtBy: peerId, fromMemo: false,
      durationMs: 1000, failCause: null, failPeerId: null, failExitCode: null, failLogTail: null, resolvedAtMs: at - 1000 + s,
    };
    out.push({ table: 'step', row: step });
    out.push({ table: 'lease', row: { leaseId, cohortId: id, stepId: def.id, peerId, attempt: 1, backup: false, startedAtMs: at - 4000, endedAtMs: at - 1000 + s, end: { kind: 'succeeded' } } });
  });
  return out;
}

async function fill(Store: StoreClass, path: string, o: Options, nowMs: number): Promise<void> {
  const store = new Store(path);
  try {
    let batch: Write[] = [];
    const flush = async (): Promise<void> => {
      await store.scheduler.apply(batch);
      batch = [];
    };
    // History first (resolved two days ago), then the recent cohorts, as time went.
    for (let i = 0; i < o.history; i++) {
      batch.push(...cohortWrites(`hist-${i}`, nowMs - 2 * 86_400_000 + i));
      if (batch.length > 10_000) await flush();
    }
    for (let i = 0; i < o.recent; i++) {
      batch.push(...cohortWrites(`recent-${i}`, nowMs - retentionMs + 1 + Math.floor((i * (retentionMs - 2)) / Math.max(1, o.recent))));
      if (batch.length > 10_000) await flush();
    }
    await flush();
  } finally {
    store.close();
  }
}

interface Timed {
  cpuMs: number;
  wallMs: number;
  cohorts: number;
}

async function openAndLoad(Store: StoreClass, path: string, nowMs: number): Promise<Timed> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const store = new Store(path);
  try {
    const snap = await store.scheduler.load(nowMs, retentionMs);
    const cpu = process.cpuUsage(cpu0);
    return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0, cohorts: snap.cohorts.length };
  } finally {
    store.close();
  }
}

const o = parseOptions(process.argv.slice(2));
const here = resolve(import.meta.dirname, '..');
const roots = o.against === null ? [here] : [o.against, here];
const classes: StoreClass[] = [];
for (const root of roots) classes.push(((await import(pathToFileURL(join(root, 'server/store/sqlite-store.ts')).href)) as { SqliteStore: StoreClass }).SqliteStore);
const dir = mkdtempSync(join(tmpdir(), 'taskshard-load-probe-'));
try {
  const nowMs = Date.now();
  const first = join(dir, 'load-0.db');
  await fill(classes[0]!, first, o, nowMs);
  const files = roots.map((_, i) => (i === 0 ? first : join(dir, `load-${i}.db`)));
  for (let i = 1; i < files.length; i++) copyFileSync(first, files[i]!);
  const fmt = (t: Timed): string => `${t.cpuMs.toFixed(0)} ms CPU, ${t.wallMs.toFixed(0)} ms wall`;
  console.log(`${o.recent} cohorts within retention, ${o.history} outside (3 peers x 4 steps each), written by ${roots[0]}; ${o.rounds} rounds of open + load per tree, alternately`);
  // A tree that migrates the file does it on its first open: reported apart, not in the rounds.
  for (let i = 1; i < roots.length; i++) console.log(`${roots[i]}: first open (migrates the file) + load: ${fmt(await openAndLoad(classes[i]!, files[i]!, nowMs))}`);
  const runs: Timed[][] = roots.map(() => []);
  for (let r = 0; r < o.rounds; r++) for (let i = 0; i < roots.length; i++) runs[i]!.push(await openAndLoad(classes[i]!, files[i]!, nowMs));
  roots.forEach((root, i) => {
    const cpu = runs[i]!.map((t) => t.cpuMs).sort((a, b) => a - b);
    const wall = runs[i]!.map((t) => t.wallMs).sort((a, b) => a - b);
    const mid = Math.floor(cpu.length / 2);
    console.log(`${root}: ${runs[i]![0]!.cohorts} cohorts loaded; CPU ms min ${cpu[0]!.toFixed(0)}, median ${cpu[mid]!.toFixed(0)}; wall ms min ${wall[0]!.toFixed(0)}, median ${wall[mid]!.toFixed(0)}`);
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
