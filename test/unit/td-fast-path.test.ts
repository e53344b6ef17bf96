import { describe, expect, it } from 'vitest';
import { decodeTaskDirectorFrame, taskDirectorLimits } from '../../shared/task-director-protocol.js';

/**
 * A Task Director connection's TASK_COMPLETE naming the schema id its INIT named (already checked
 * by zod then) is decoded by hand (shared/task-director-protocol.ts); anything else goes to zod.
 * With and without the INIT's schema id the decoder must give the same verdict on every frame.
 */

const initSchemaId = 'build';
const base = { message_type: 3, schema_id: initSchemaId, task_id: '12', task_success: true };

const values: Record<string, unknown[]> = {
  message_type: [3, 1, 2, '3', 3.5, null],
  schema_id: [initSchemaId, 'other', '', 'x'.repeat(taskDirectorLimits.maxSchemaIdLength + 1), 5, null, 'bu\u0000ild'],
  task_id: ['0', '', 'x'.repeat(taskDirectorLimits.maxTaskIdLength), 'x'.repeat(taskDirectorLimits.maxTaskIdLength + 1), 7, null, ['1']],
  task_success: [true, false, 'true', 1, null],
  extra: [1, 'x'],
};

function frames(): string[] {
  const out = [JSON.stringify(base)];
  for (const [key, list] of Object.entries(values)) for (const value of list) out.push(JSON.stringify({ ...base, [key]: value }));
  for (const key of Object.keys(base)) {
    const { [key]: _dropped, ...rest } = base as Record<string, unknown>;
    out.push(JSON.stringify(rest));
  }
  out.push('{"message_type":3,"schema_id":"build","task_id":"1","task_success":true,"__proto__":{"x":1}}');
  return out;
}

describe('TASK_COMPLETE: the fast path after INIT and zod agree', () => {
  for (const text of frames()) {
    it(text.length > 120 ? `${text.slice(0, 120)}…` : text, () => {
      const fast = decodeTaskDirectorFrame(text, initSchemaId);
      const full = decodeTaskDirectorFrame(text, null);
      expect(fast).toEqual(full);
    });
  }

  it('the plain frame is accepted on both paths', () => {
    expect(decodeTaskDirectorFrame(JSON.stringify(base), initSchemaId)).toEqual({ ok: true, frame: base });
  });
});
