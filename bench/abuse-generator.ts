import WebSocket from 'ws';

/**
 * A load generator that misbehaves (for `npm run bench -- --abuse K`): K
 * connections to the authority, each sending bad frames as fast as it can
 * (not JSON, unknown types, wrong fields, `__proto__` keys, binary, deep
 * nesting) until the authority closes it, then reconnecting. Runs until
 * SIGTERM. Prints `ready` once flooding, and on SIGTERM one JSON line: frames
 * sent, connections opened, close codes seen.
 *
 * usage: node dist/bench/abuse-generator.js URL K
 */
const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!url || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: abuse-generator URL K\n');
  process.exit(2);
}

const frames: (string | Buffer)[] = [
  '{"type":',
  'not json at all',
  '{"type":"launch","cmd":"rm -rf /"}',
  '{"type":"step.finished","leaseId":"l","stepId":"s1","ok":"yes","exitCode":0,"durationMs":1}',
  '{"type":"bye","__proto__":{"admin":true}}',
  `{"type":"bye","reason":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
  Buffer.from([1, 2, 3, 4]),
];

let sent = 0;
let opened = 0;
const closeCodes: Record<string, number> = {};
let stopping = false;

function connect(): void {
  if (stopping) return;
  opened++;
  const socket = new WebSocket(url!);
  let i = 0;
  const pump = (): void => {
    // Keep a modest amount queued so the flood is as fast as the socket, not as fast as memory.
    while (socket.readyState === WebSocket.OPEN && socket.bufferedAmount < 256 * 1024) {
      const frame = frames[i++ % frames.length]!;
      socket.send(frame, { binary: Buffer.isBuffer(frame) });
      sent++;
      if (i % 64 === 0) break;
    }
    if (socket.readyState === WebSocket.OPEN) setImmediate(pump);
  };
  socket.on('open', pump);
  socket.on('message', () => undefined);
  socket.on('error', () => undefined);
  socket.on('close', (code) => {
    closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    setImmediate(connect);
  });
}

process.on('SIGTERM', () => {
  stopping = true;
  // Writes to a pipe are asynchronous: exit only once the line is out.
  process.stdout.write(`${JSON.stringify({ sent, opened, closeCodes })}\n`, () => process.exit(0));
});

for (let k = 0; k < count; k++) connect();
// The parent starts measuring only after this line (a SIGTERM before it would find no handler).
process.stdout.write('ready\n');
