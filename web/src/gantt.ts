import type { RunTimeline, TimelineBar } from './api-types.js';
import { s } from './dom.js';
import { duration, isWebUrl, offset, tickStep } from './format.js';

/**
 * The run's Gantt chart as SVG: one lane per peer, a bar per lease (colour by
 * kind; dashed when a backup copy, outlined when on the critical path), thin
 * bars for waits, a universe bar after completion, a time axis from the
 * cohort's creation. `nowMs` is the server's time adjusted for the time since
 * the fetch, so open bars keep growing between live updates.
 */

const labelW = 170;
const axisH = 26;
const laneH = 38;
const barH = 22;
const waitH = 6;
const padR = 18;

function barLabel(bar: TimelineBar): string {
  if (bar.kind === 'universe') return bar.inferred ? 'universe?' : bar.ok === false ? 'universe ✗' : 'universe';
  if (bar.kind === 'wait') return '';
  return `${bar.retried ? '↻ ' : ''}${bar.stepId ?? ''}${bar.backup ? ' (backup)' : ''}`;
}

function barTitle(bar: TimelineBar, peerId: string, endMs: number): string {
  const len = duration(endMs - bar.startMs);
  switch (bar.kind) {
    case 'wait':
      return `${peerId} waited ${len}: nothing was assignable`;
    case 'universe':
      if (bar.inferred) return `${peerId} universe build (inferred: complete until the peer left; it did not report its build)${bar.open ? ', running' : ''}: ${len}`;
      return `${peerId} universe build ${bar.ok === false ? 'FAILED' : 'built'}: ${len}`;
    default: {
      const what = bar.kind === 'running' ? 'building' : bar.kind;
      const extras = [bar.attempt !== null ? `attempt ${bar.attempt}` : null, bar.backup ? 'backup copy' : null, bar.retried ? 'retry' : null, bar.critical ? 'critical path' : null].filter(Boolean);
      return `${bar.stepId ?? ''} ${what} on ${peerId}, ${len}${extras.length ? ` (${extras.join(', ')})` : ''}`;
    }
  }
}

export function renderGantt(t: RunTimeline, widthPx: number, nowMs: number): SVGElement {
  const anyOpen = t.lanes.some((l) => l.bars.some((b) => b.open));
  const t0 = t.startedAtMs;
  const tEnd = Math.max(t.endAtMs, anyOpen ? nowMs : t.endAtMs);
  const span = Math.max(tEnd - t0, 1);
  const width = Math.max(widthPx, 480);
  const plotW = width - labelW - padR;
  const x = (ms: number): number => labelW + ((ms - t0) / span) * plotW;
  const height = axisH + t.lanes.length * laneH + 6;
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `timeline of cohort ${t.cohortId}` });

  const axis = s('g', { class: 'axis' });
  const step = tickStep(span);
  for (let ms = 0; ms <= span; ms += step) {
    const xx = x(t0 + ms);
    axis.append(s('line', { x1: xx, x2: xx, y1: axisH - 4, y2: height }), s('text', { x: xx + 3, y: axisH - 9 }, offset(ms)));
  }
  svg.append(axis);

  t.lanes.forEach((lane, i) => {
    const top = axisH + i * laneH;
    const g = s('g', { class: 'lane', 'data-lane': lane.peerId });
    g.append(
      s('line', { class: 'lane-sep', x1: 0, x2: width, y1: top + laneH, y2: top + laneH }),
      s('text', { class: 'lane-label', x: 12, y: top + 16 }, lane.peerId),
      s('text', { class: 'lane-sub', x: 12, y: top + 30 }, `${lane.pipelineName} · ${lane.status}`),
    );
    if (lane.ciJobUrl !== null && isWebUrl(lane.ciJobUrl)) {
      g.append(
        s('a', { class: 'lane-job', href: lane.ciJobUrl, target: '_blank', rel: 'noopener noreferrer', 'data-ci-job': lane.ciJobUrl }, s('title', {}, `${lane.peerId}'s CI job`), s('text', { x: labelW - 10, y: top + 30, 'text-anchor': 'end' }, 'job ↗')),
      );
    }
    for (const bar of lane.bars) {
      const endMs = bar.open ? Math.max(bar.endMs, nowMs) : bar.endMs;
      const x1 = x(bar.startMs);
      const w = Math.max(x(endMs) - x1, 2);
      const h = bar.kind === 'wait' ? waitH : barH;
      const y = top + (laneH - h) / 2;
      const classes = ['bar', `kind-${bar.kind}`, bar.backup && 'backup', bar.critical && 'critical', bar.open && 'open', bar.retried && 'retried', bar.inferred && 'inferred', bar.ok === false && 'universe-failed']
        .filter(Boolean)
        .join(' ');
      const bg = s(
        'g',
        { class: classes, 'data-kind': bar.kind, 'data-step': bar.stepId, 'data-peer': lane.peerId, 'data-attempt': bar.attempt, 'data-critical': bar.critical ? 'true' : null, 'data-inferred': bar.kind === 'universe' ? String(bar.inferred) : null },
        s('title', {}, barTitle(bar, lane.peerId, endMs)),
        s('rect', { class: 'body', x: x1, y, width: w, height: h }),
      );
      const label = barLabel(bar);
      if (label && w > label.length * 6.6 + 8) bg.append(s('text', { x: x1 + 5, y: y + h / 2 + 4 }, label));
      g.append(bg);
    }
    svg.append(g);
  });

  if (anyOpen) {
    const xx = x(nowMs);
    svg.append(s('g', { class: 'now' }, s('line', { x1: xx, x2: xx, y1: axisH - 4, y2: height })));
  }
  return svg;
}
