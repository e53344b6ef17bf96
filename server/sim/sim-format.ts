/** Human forms of simulated times, shared by `taskshard plan` and the benchmarks. */

/** A duration: `1h02m`, `14m05s`, `42s`, `0.5s`. */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms < 10_000 && ms % 1000 !== 0) return `${Math.round(ms / 100) / 10}s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

/** An offset from the start as a clock: `0:04:00`, `12:30:05`. */
export function formatClock(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

/** A share as a percentage with one decimal: `66.7%`. */
export function formatPercent(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${Math.round((part / whole) * 1000) / 10}%`;
}

/** A duration that may be negative: `-4m10s`. */
export function formatSignedDuration(ms: number): string {
  return ms < 0 ? `-${formatDuration(-ms)}` : formatDuration(ms);
}

/** Short labels of the policies, with the letters the README and docs use. */
export const policyLabels = Object.freeze({
  taskshard: 'taskshard',
  'baseline-shared-cache-schema-order': '(b) shared cache, schema order',
  'baseline-shared-cache-random-order': '(c) shared cache, random order',
  'baseline-every-peer-builds-everything': '(a) no cache, every peer builds all',
  'baseline-task-director': '(d) Task Director policy',
} as const);

/** What the two units mean, in one line each, for the outputs that print them. */
export const unitLegend = [
  'build time: machine time spent building steps, every copy counted (work not repeated is saved)',
  'runner time: Σ over peers of (arrival to ready for the universe build, waiting included, + the universe build): how long CI runners are held',
] as const;
