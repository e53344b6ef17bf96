import type { RunTimeline, TimelineBar } from './run-timeline.js';

/**
 * A run as Chrome trace-event JSON (the "JSON Object Format" that
 * chrome://tracing, Perfetto's UI and speedscope open): one process for the
 * cohort, one thread per peer, a complete event (`ph: "X"`) per bar.
 * Timestamps are microseconds from the cohort's creation.
 */

export interface TraceEvent {
  readonly name: string;
  readonly ph: 'X' | 'M' | 'i';
  readonly pid: number;
  readonly tid: number;
  readonly ts?: number;
  readonly dur?: number;
  readonly cat?: string;
  readonly s?: 'g' | 'p' | 't';
  readonly args?: Record<string, string | number | boolean | null>;
}

export interface TraceFile {
  readonly traceEvents: TraceEvent[];
  readonly displayTimeUnit: 'ms';
  readonly otherData: Record<string, string | number | null>;
}

const us = (ms: number): number => Math.round(ms * 1000);

function barName(bar: TimelineBar, universe: string): string {
  if (bar.kind === 'wait') return 'wait';
  if (bar.kind === 'universe') return `universe ${universe}`;
  return bar.stepId ?? bar.kind;
}

export function traceOf(timeline: RunTimeline): TraceFile {
  const pid = 1;
  const t0 = timeline.startedAtMs;
  const events: TraceEvent[] = [{ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: `cohort ${timeline.cohortId} (${timeline.schemaId})` } }];
  timeline.lanes.forEach((lane, i) => {
    const tid = i + 1;
    events.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name: `peer ${lane.peerId}` } });
    events.push({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } });
    for (const bar of lane.bars) {
      events.push({
        name: barName(bar, timeline.universe),
        cat: bar.kind,
        ph: 'X',
        pid,
        tid,
        ts: us(bar.startMs - t0),
        dur: us(bar.endMs - bar.startMs),
        args: {
          kind: bar.kind,
          step: bar.stepId,
          attempt: bar.attempt,
          backup: bar.backup,
          retried: bar.retried,
          criticalPath: bar.critical,
          unfinished: bar.open,
        },
      });
    }
  });
  if (timeline.outcome !== null) {
    events.push({ name: `cohort ${timeline.outcome}`, ph: 'i', s: 'g', pid, tid: 0, ts: us(timeline.endAtMs - t0), args: { outcome: timeline.outcome } });
  }
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: {
      cohortId: timeline.cohortId,
      schemaId: timeline.schemaId,
      repo: timeline.repo,
      outcome: timeline.outcome,
      startedAt: new Date(t0).toISOString(),
    },
  };
}
