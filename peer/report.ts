import type { Writable } from 'node:stream';
import type { CompleteSummary, StepUpdate, Wait } from '../shared/protocol.js';

/**
 * The peer's output for CI logs: one human line per event on stdout, each
 * starting `taskshard: `; diagnostics (protocol details, reconnect attempts)
 * on stderr. A failing step's log tail follows its line, indented with `| `.
 * The format functions are pure so tests can check the wording.
 */

/** `850 ms`, `12.3 s`, `4m 05s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const totalSec = Math.round(sec);
  if (totalSec < 3600) return `${Math.floor(totalSec / 60)}m ${String(totalSec % 60).padStart(2, '0')}s`;
  const totalMin = Math.round(totalSec / 60);
  return `${Math.floor(totalMin / 60)}h ${String(totalMin % 60).padStart(2, '0')}m`;
}

/** `exit 3`, `no exit code`. */
export function formatExit(exitCode: number | null | undefined): string {
  return exitCode === null || exitCode === undefined ? 'no exit code' : `exit ${exitCode}`;
}

export function waitingLine(wait: Wait): string {
  const unresolved = `${wait.unresolved} ${wait.unresolved === 1 ? 'step' : 'steps'} unresolved`;
  if (wait.running.length === 0) return `waiting: nothing assignable yet (${unresolved})`;
  // `heldMs` is the lease's age on the authority's clock when it sent the frame (older authorities omit it).
  const held = wait.running.map((r) => `step ${r.stepId} held by peer ${r.peerId}${r.heldMs === undefined ? '' : ` for ${formatDuration(r.heldMs)}`}`).join(', ');
  return `waiting on ${held} (${unresolved})`;
}

export function builtElsewhereLine(update: StepUpdate): string {
  const took = update.durationMs === undefined ? '' : ` in ${formatDuration(update.durationMs)}`;
  if (update.fromMemo || update.peerId === null) return `step ${update.stepId} reused from memo`;
  return `step ${update.stepId} built by peer ${update.peerId}${took}`;
}

/** The line naming a failed step: who failed it, with which exit code, and why. */
export function failedStepLine(failure: { stepId: string; peerId: string | null; exitCode?: number | null | undefined; reason?: string | undefined }): string {
  const who = failure.peerId === null ? 'no peer' : `peer ${failure.peerId}`;
  const why = failure.reason ? ` (${failure.reason})` : '';
  return `step ${failure.stepId} FAILED on ${who} with ${formatExit(failure.exitCode)}${why}`;
}

/**
 * The final summary, in two units: build time saved (steps others built or the
 * memo had) and this peer's runner time against building every step alone,
 * which is negative when it waited longer than building alone would have taken.
 */
export function summaryLine(summary: CompleteSummary, outcome: string): string {
  const list = (ids: readonly string[]): string => (ids.length === 0 ? '' : ` (${ids.join(', ')})`);
  return [
    `complete (${outcome}):`,
    `built here ${summary.builtHere.length}${list(summary.builtHere)}`,
    `/ built by others ${summary.builtByOthers.length}`,
    `/ from memo ${summary.fromMemo.length}`,
    `/ failed ${summary.failed.length}${list(summary.failed.map((f) => f.stepId))}`,
    // Only where steps require labels: nobody had them (unshared), or this peer lacks them and was not kept waiting.
    ...(summary.unshared && summary.unshared.length > 0 ? [`/ unshared ${summary.unshared.length}${list(summary.unshared.map((u) => u.stepId))}`] : []),
    ...(summary.notRunnable && summary.notRunnable.length > 0 ? [`/ left to peers with other labels ${summary.notRunnable.length}${list(summary.notRunnable.map((n) => n.stepId))}`] : []),
    `/ build time saved ${formatDuration(summary.savedSec * 1000)}`,
    `/ ${runnerTimeText(summary)}`,
  ].join(' ');
}

/** This peer's runner time against building alone; says so when the authority does not report it. */
export function runnerTimeText(summary: CompleteSummary): string {
  if (summary.aloneSec === undefined || summary.spentSec === undefined) return 'runner time saved: not reported by this authority';
  const savedMs = (summary.aloneSec - summary.spentSec) * 1000;
  const head = `runner time ${formatDuration(summary.spentSec * 1000)} building and waiting vs ${formatDuration(summary.aloneSec * 1000)} building alone:`;
  if (savedMs >= 0) return `${head} saved ${formatDuration(savedMs)}`;
  return `${head} NEGATIVE, ${formatDuration(-savedMs)} more than building alone (waiting for the cohort cost more than it saved)`;
}

/** Log-tail lines, indented; at most `maxLines` from the end. */
export function tailLines(logTail: string | undefined, maxLines = 40): string[] {
  if (!logTail) return [];
  const lines = logTail.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n');
  return lines.slice(-maxLines).map((l) => `  | ${l}`);
}

/** How the CI system shows structure: GitHub workflow commands, GitLab section markers, or plain lines. */
export type CiStyle = 'github' | 'gitlab' | null;

/**
 * Writes event lines and diagnostics. With `quiet` only three kinds of line
 * are written: assignments (a step this peer builds), failures (with their
 * annotations) and the final line; events, progress lines, warnings and
 * diagnostics are not (the final line and `--report` still say when the peer
 * failed open, and why).
 */
export class PeerReport {
  private groupOpen: string | null = null;
  private sections = 0;

  constructor(
    private readonly stdout: Writable,
    private readonly stderr: Writable,
    /** In GitHub Actions, warnings and failures also become annotations and steps collapsible groups; GitLab gets sections. */
    private readonly style: CiStyle = null,
    private readonly quiet = false,
  ) {}

  /** One event line on stdout (not with `quiet`). */
  event(text: string): void {
    if (!this.quiet) this.stdout.write(`taskshard: ${text}\n`);
  }

  /** A `waiting:` line while nothing of this peer's runs (not with `quiet`). */
  progress(text: string): void {
    if (!this.quiet) this.stdout.write(`taskshard: ${text}\n`);
  }

  /** A step this peer is about to build: always shown. */
  assignment(text: string): void {
    this.stdout.write(`taskshard: ${text}\n`);
  }

  /** A loud warning (fail-open and the like) on stdout, where CI users look (not with `quiet`). */
  warning(text: string): void {
    if (this.quiet) return;
    this.stdout.write(`taskshard: WARNING: ${text}\n`);
    if (this.style === 'github') this.stdout.write(`::warning title=taskshard::${escapeAnnotation(text)}\n`);
  }

  /** A failure that decides the exit code, with the log tail that came with it: always shown. */
  failure(text: string, logTail?: string): void {
    this.stdout.write(`taskshard: ${text}\n`);
    for (const line of tailLines(logTail)) this.stdout.write(`${line}\n`);
    if (this.style === 'github') this.stdout.write(`::error title=taskshard::${escapeAnnotation(text)}\n`);
  }

  /** The last line of the run: always shown. */
  final(text: string): void {
    this.stdout.write(`taskshard: ${text}\n`);
  }

  /** An error the CI system should flag on the job (GitHub annotation, GitLab red line), e.g. a refusal under --strict: always shown. */
  annotateError(text: string): void {
    if (this.style === 'github') this.stdout.write(`::error title=taskshard::${escapeAnnotation(text)}\n`);
    else if (this.style === 'gitlab') this.stdout.write(`\x1b[31;1mERROR: taskshard: ${text}\x1b[0m\n`);
    else this.stdout.write(`taskshard: ERROR: ${text}\n`);
  }

  /** Opens a collapsible group for one build (GitHub `::group::`, GitLab section); closes any open one first. */
  groupStart(title: string): void {
    this.groupEnd();
    if (this.style === 'github') {
      this.stdout.write(`::group::${escapeAnnotation(title)}\n`);
      this.groupOpen = title;
    } else if (this.style === 'gitlab') {
      const id = `taskshard_${++this.sections}`;
      this.stdout.write(`\x1b[0Ksection_start:${Math.floor(Date.now() / 1000)}:${id}[collapsed=true]\r\x1b[0K${title}\n`);
      this.groupOpen = id;
    }
  }

  groupEnd(): void {
    if (this.groupOpen === null) return;
    if (this.style === 'github') this.stdout.write('::endgroup::\n');
    else if (this.style === 'gitlab') this.stdout.write(`\x1b[0Ksection_end:${Math.floor(Date.now() / 1000)}:${this.groupOpen}\r\x1b[0K\n`);
    this.groupOpen = null;
  }

  /** Diagnostics on stderr (not with `quiet`). */
  diagnostic(text: string): void {
    if (!this.quiet) this.stderr.write(`taskshard: ${text}\n`);
  }
}

function escapeAnnotation(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
