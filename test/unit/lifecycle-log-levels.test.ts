import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { EventRecord, Write } from '../../server/core/records.js';
import { type LifecycleLine, LifecycleLog, lifecycleLine } from '../../server/http/lifecycle-log.js';

/**
 * server/http/lifecycle-log.ts makes no line the logger would drop: at `warn` only the
 * kinds that can be warnings are rendered, and every warning still goes out.
 */

function recordingLog(level: string): { log: FastifyBaseLogger; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (l: string) => (_fields: unknown, msg: string) => void lines.push({ level: l, msg });
  const log = { level, info: at('info'), warn: at('warn') } as unknown as FastifyBaseLogger;
  return { log, lines };
}

const event = (kind: string): Write => ({ table: 'event', row: { cohortId: 'c1', atMs: 0, kind, stepId: 's1', peerId: 'p1', detail: null } satisfies EventRecord });
const kinds = ['cohort.created', 'peer.joined', 'peer.gone', 'step.leased', 'step.succeeded', 'step.attempt-failed', 'step.failed', 'lease.lost', 'lease.timed-out', 'schema.digest-differs', 'step.unpublished', 'peer.released'];
const empty = { cohorts: new Map(), steps: new Map(), liveLeases: new Map(), endedLeases: new Map() };

describe('lifecycle lines by log level', () => {
  it('at warn, exactly the warnings of the batch are logged', () => {
    const { log, lines } = recordingLog('warn');
    new LifecycleLog(log, () => 'repo').observe(kinds.map(event));
    const expected = kinds.map((k): LifecycleLine => lifecycleLine((event(k) as { row: EventRecord }).row, empty, 'repo')).filter((l) => l.level === 'warn');
    expect(lines).toEqual(expected.map((l) => ({ level: 'warn', msg: l.msg })));
    expect(lines.length).toBeGreaterThan(0);
  });

  it('at info, every event is logged; silent, none', () => {
    const info = recordingLog('info');
    new LifecycleLog(info.log, () => 'repo').observe(kinds.map(event));
    expect(info.lines).toHaveLength(kinds.length);
    const silent = recordingLog('silent');
    new LifecycleLog(silent.log, () => 'repo').observe(kinds.map(event));
    expect(silent.lines).toEqual([]);
  });
});
