import { describe, expect, it } from 'vitest';
import { decodePeerMessage } from '../../shared/frames.js';
import { limits } from '../../shared/limits.js';
import { stepFinishedSchema } from '../../shared/protocol.js';

/**
 * shared/frames.ts decodes the hot frame (`step.finished` without a log tail) by hand
 * and leaves everything else to zod: the two must give the same verdict on every frame,
 * and a refused frame keeps zod's message naming the field.
 */

const base = { type: 'step.finished', leaseId: 'l_AbCdEfGhIjKl', stepId: 's12', ok: true, exitCode: 0, durationMs: 0 };

const values: Record<string, unknown[]> = {
  leaseId: ['l_1', 'a:b.c-d_e', '', 'has space', 'x'.repeat(limits.maxTokenLength), 'x'.repeat(limits.maxTokenLength + 1), 7, null, ['l_1'], 'é'],
  stepId: ['s1', '_x', 'a..b', '.a', '', 'x'.repeat(limits.maxIdLength), 'x'.repeat(limits.maxIdLength + 1), 'a@b+c:d', 3, null, 'sp ace'],
  ok: [true, false, 'true', 1, null],
  exitCode: [0, -1024, 1024, 1025, -1025, 1.5, null, '0', true, -0],
  durationMs: [0, 1, limits.maxEstimateSec * 4000, limits.maxEstimateSec * 4000 + 1, -1, 2.5, null, '5', 1e21],
  unpublished: [true, false, null, 'yes', 1],
  logTail: ['tail', '', 'x'.repeat(limits.maxLogTailChars + 1), 5],
  extra: [1, 'x'],
};

function frames(): string[] {
  const out = [JSON.stringify(base)];
  for (const [key, list] of Object.entries(values)) {
    for (const value of list) out.push(JSON.stringify({ ...base, [key]: value }));
  }
  for (const key of Object.keys(base)) {
    const { [key]: _dropped, ...rest } = base as Record<string, unknown>;
    out.push(JSON.stringify(rest));
  }
  out.push(JSON.stringify({ ...base, ok: false, exitCode: 2, unpublished: true }));
  out.push('{"type":"step.finished","leaseId":"l_1","stepId":"s1","ok":true,"exitCode":0,"durationMs":0,"__proto__":{"x":1}}');
  return out;
}

describe('step.finished: the fast path and zod agree', () => {
  for (const text of frames()) {
    it(text.length > 120 ? `${text.slice(0, 117)}...` : text, () => {
      const decoded = decodePeerMessage(text);
      const zod = stepFinishedSchema.safeParse(JSON.parse(text));
      expect(decoded.ok).toBe(zod.success);
      if (decoded.ok && zod.success) expect(decoded.message).toEqual(zod.data);
      if (!decoded.ok && JSON.parse(text).type === 'step.finished') expect(decoded.problem).toMatch(/^step\.finished: /);
    });
  }

  it('a refused frame names the field and the rule', () => {
    const decoded = decodePeerMessage(JSON.stringify({ ...base, exitCode: 'x' }));
    expect(decoded).toEqual({ ok: false, problem: expect.stringContaining('exitCode') });
  });
});
