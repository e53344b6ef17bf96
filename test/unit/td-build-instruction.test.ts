import { describe, expect, it } from 'vitest';
import { buildInstructionHead } from '../../server/http/task-director-socket.js';
import { decodeTaskDirectorServerFrame, taskDirectorMessageType } from '../../shared/task-director-protocol.js';

/** The BUILD_INSTRUCTION text made from a per-connection head (task-director-socket.ts) is the frame's JSON.stringify, byte for byte. */
describe('BUILD_INSTRUCTION from its head', () => {
  it('equals JSON.stringify of the frame and decodes as a server frame, for plain and awkward schema and task ids', () => {
    for (const schemaId of ['bench', 'my schema "v2"', 'päth/with\\slashes', '\u2028line', 'x'.repeat(128)]) {
      for (const taskId of ['0', '999', 'a"b', '\u00e9']) {
        const text = `${buildInstructionHead(schemaId)}${JSON.stringify(taskId)}}`;
        expect(text).toBe(JSON.stringify({ message_type: taskDirectorMessageType.buildInstruction, type: 'send.message', schema_id: schemaId, task_id: taskId }));
        expect(decodeTaskDirectorServerFrame(text)).toEqual({ ok: true, frame: { message_type: 2, type: 'send.message', schema_id: schemaId, task_id: taskId } });
      }
    }
  });
});
