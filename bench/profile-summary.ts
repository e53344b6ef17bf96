import { readFileSync } from 'node:fs';

/**
 * `npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--timeline] [--from-sec A] [--to-sec B]`: where the
 * authority's busy time went in a V8 CPU profile (`npm run bench -- --profile
 * DIR` writes one per authority run). Each sample is charged to the nearest
 * frame, leaf first, that has a source URL (a native call such as a socket
 * write or a SQLite step is charged to the JS that made it), then grouped by
 * what that file is. Idle time is left out of the percentages.
 *
 * The profile covers the whole process, start-up included. `--timeline` prints the
 * busy share per 250 ms from the profile's start; `--from-sec` and `--to-sec` count
 * only the samples in that window (the run itself, where the timeline is busy).
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Groups, first match wins; the pattern is tested against the frame's URL. */
const groups: readonly (readonly [string, RegExp])[] = [
  ['ws: framing and sending', /\/node_modules\/ws\//],
  ['socket I/O (node:net, streams)', /^node:(net|internal\/stream_base_commons|internal\/streams|stream|internal\/net)/],
  ['SQLite store', /better-sqlite3|\/server\/store\//],
  ['scheduler core', /\/server\/core\//],
  ['zod', /\/node_modules\/zod\//],
  ['shared (frame checks, schema, digests)', /\/shared\//],
  ['server http adapters', /\/server\/http\//],
  ['logging (pino)', /\/node_modules\/(pino|sonic-boom|thread-stream)/],
  ['metrics (prom-client)', /\/node_modules\/prom-client\//],
  ['fastify', /\/node_modules\/(fastify|@fastify|light-my-request|avvio|find-my-way)/],
  ['server other', /\/server\//],
  ['node internals', /^node:/],
];

function groupOf(url: string): string {
  for (const [name, pattern] of groups) if (pattern.test(url)) return name;
  return 'other';
}

function main(): number {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 15;
  const secFlag = (name: string, fallback: number): number => {
    const at = args.indexOf(name);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  const fromUs = secFlag('--from-sec', 0) * 1e6;
  const toUs = secFlag('--to-sec', Infinity) * 1e6;
  const valueOf = new Set(['--top', '--from-sec', '--to-sec'].map((f) => args.indexOf(f) + 1).filter((i) => i > 0));
  const file = args.find((a, i) => !a.startsWith('--') && !valueOf.has(i));
  if (!file || !Number.isInteger(top) || top < 0 || !(fromUs >= 0) || !(toUs > fromUs)) {
    process.stderr.write('usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--timeline] [--from-sec A] [--to-sec B]\n');
    return 2;
  }
  let profile: CpuProfile;
  try {
    profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  } catch (err) {
    process.stderr.write(`profile-summary: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }
  if (!Array.isArray(profile.nodes) || !Array.isArray(profile.samples) || !Array.isArray(profile.timeDeltas)) {
    process.stderr.write(`profile-summary: ${file} is not a V8 CPU profile (no nodes/samples/timeDeltas)\n`);
    return 2;
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const charged = new Map<number, string>();
  const chargeOf = (id: number): string => {
    const cached = charged.get(id);
    if (cached !== undefined) return cached;
    const leaf = byId.get(id)!.callFrame.functionName;
    let group: string;
    if (leaf === '(garbage collector)') group = 'GC';
    else if (leaf === '(idle)') group = 'idle';
    else if (leaf === '(program)') group = 'V8/native (program)';
    else {
      group = 'other';
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const url = byId.get(at)!.callFrame.url;
        if (url) {
          group = groupOf(url);
          break;
        }
      }
    }
    charged.set(id, group);
    return group;
  };
  const perGroupUs = new Map<string, number>();
  const selfUs = new Map<number, number>();
  let busyUs = 0;
  let atUs = 0;
  const timeline = new Map<number, { busy: number; all: number }>();
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    atUs += dt;
    const group = chargeOf(id);
    const bucket = Math.floor(atUs / 250_000);
    const slot = timeline.get(bucket) ?? { busy: 0, all: 0 };
    slot.all += dt;
    if (group !== 'idle') slot.busy += dt;
    timeline.set(bucket, slot);
    if (atUs < fromUs || atUs > toUs) return;
    perGroupUs.set(group, (perGroupUs.get(group) ?? 0) + dt);
    if (group !== 'idle') {
      busyUs += dt;
      selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    }
  });
  if (args.includes('--timeline')) {
    for (const [bucket, slot] of [...timeline].sort((a, b) => a[0] - b[0])) {
      process.stdout.write(`${(bucket / 4).toFixed(2).padStart(7)} s  busy ${Math.round((100 * slot.busy) / Math.max(1, slot.all))}%\n`);
    }
    process.stdout.write('\n');
  }
  const pct = (us: number): string => `${((100 * us) / Math.max(1, busyUs)).toFixed(1)}%`.padStart(6);
  process.stdout.write(`busy ${(busyUs / 1e6).toFixed(2)} s, idle ${((perGroupUs.get('idle') ?? 0) / 1e6).toFixed(2)} s\n`);
  for (const [group, us] of [...perGroupUs].filter(([g]) => g !== 'idle').sort((a, b) => b[1] - a[1])) process.stdout.write(`${pct(us)}  ${group}\n`);
  process.stdout.write(`\ntop ${top} functions by self time:\n`);
  for (const [id, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}` : chargeOf(id);
    process.stdout.write(`${pct(us)}  ${f.functionName || '(anonymous)'}  ${where}\n`);
  }
  return 0;
}

process.exitCode = main();
