import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/**
 * Where an authority's CPU goes by thread (Linux /proc/<pid>/task/<tid>/stat): its main thread
 * (the event loop) and the rest (the maintenance worker's checkpoints and pruning, V8's collector
 * helpers and compiler, libuv's pool: all named "node", so not told apart). A stall's "waiting" is
 * the main thread runnable without a core; `other` says how much of the competition for the two
 * cores was the authority's own other threads.
 */
export interface ThreadCpuSec {
  readonly main: number;
  readonly other: number;
}

let ticksPerSec: number | null = null;

function clockTicks(): number {
  if (ticksPerSec === null) {
    const ticks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim());
    if (!Number.isInteger(ticks) || ticks <= 0) throw new Error('cannot read the clock tick rate (getconf CLK_TCK)');
    ticksPerSec = ticks;
  }
  return ticksPerSec;
}

/** CPU seconds so far by thread class; null where /proc is not readable (not Linux, or the process is gone). */
export function threadCpuSec(pid: number): ThreadCpuSec | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const sums = { main: 0, other: 0 };
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // After the command name (in parentheses): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const sec = (Number(fields[11]) + Number(fields[12])) / clockTicks();
    if (!Number.isFinite(sec)) throw new Error(`cannot read utime/stime from /proc/${pid}/task/${tid}/stat`);
    if (Number(tid) === pid) sums.main += sec;
    else sums.other += sec;
  }
  return sums;
}

/** `to - from`, rounded to 0.1 s. */
export function threadCpuBetween(from: ThreadCpuSec | null, to: ThreadCpuSec | null): ThreadCpuSec | null {
  if (from === null || to === null) return null;
  const r = (v: number): number => Math.round(v * 10) / 10;
  return { main: r(to.main - from.main), other: r(to.other - from.other) };
}
