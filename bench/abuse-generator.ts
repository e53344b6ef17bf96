import WebSocket from 'ws';

/**
 * A load generator that misbehaves (for `npm run bench -- --abuse K`): K
 * connections to the authority, each attacking until the authority closes
 * it, then reconnecting. Runs until SIGTERM. Prints `ready` once attacking,
 * and on SIGTERM one JSON line: frames sent, connections opened, refused
 * upgrades (HTTP status), close codes seen.
 *
 * Attacks (the third argument):
 * - `bad-frames` (default): bad frames as fast as the socket takes them (not
 *   JSON, unknown types, wrong fields, `__proto__` keys, binary, deep nesting).
 * - `expensive`: frames that cost the most to parse and validate: a 4 MiB hello
 *   of 300k unknown keys on `/v1/peer`, a Task Director INIT with 60k
 *   `repo_state` entries on `/ws/api/1/...`, each followed by another large
 *   frame (a connection's second large frame is refused unread).
 * - `idle`: connections that never send anything (holding slots until the
 *   hello deadline), reconnecting as soon as they are closed or refused.
 *
 * usage: node dist/bench/abuse-generator.js URL K [bad-frames|expensive|idle]
 */
const attacks = ['bad-frames', 'expensive', 'idle'] as const;
type Attack = (typeof attacks)[number];
const [url, countArg, attackArg = 'bad-frames'] = process.argv.slice(2);
const count = Number(countArg);
if (!url || !Number.isInteger(count) || count < 1 || !(attacks as readonly string[]).includes(attackArg)) {
  process.stderr.write(`usage: abuse-generator URL K [${attacks.join('|')}]\n`);
  process.exit(2);
}
const attack = attackArg as Attack;

const badFrames: (string | Buffer)[] = [
  '{"type":',
  'not json at all',
  '{"type":"launch","cmd":"rm -rf /"}',
  '{"type":"step.finished","leaseId":"l","stepId":"s1","ok":"yes","exitCode":0,"durationMs":1}',
  '{"type":"bye","__proto__":{"admin":true}}',
  `{"type":"bye","reason":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
  Buffer.from([1, 2, 3, 4]),
];

function unknownKeysHello(): string {
  const keys: string[] = [];
  for (let i = 0; i < 300_000; i++) keys.push(`"k${i}":1`);
  return `{"type":"hello",${keys.join(',')}}`;
}

function wideInit(): string {
  const repos: string[] = [];
  for (let i = 0; i < 60_000; i++) repos.push(`"org/r${i}":{"base_ref":"main","patchset":"p${i}"}`);
  return `{"message_type":1,"repo_state":{${repos.join(',')}},"complex_patchset":false,"cache_id":"1","schema_id":"build","total_tasks":3}`;
}

const expensive = attack === 'expensive' ? { hello: unknownKeysHello(), init: wideInit() } : null;
const taskDirectorUrl = (k: number): string => url!.replace(/\/v1\/peer$/, `/ws/api/1/abuser_${k}/`);

let sent = 0;
let opened = 0;
const closeCodes: Record<string, number> = {};
const refused: Record<string, number> = {};
let stopping = false;

function connect(k: number): void {
  if (stopping) return;
  opened++;
  const target = attack === 'expensive' && k % 2 === 1 ? taskDirectorUrl(k) : url!;
  const socket = new WebSocket(target);
  let i = 0;
  const pump = (): void => {
    // Keep a modest amount queued so the flood is as fast as the socket, not as fast as memory.
    while (socket.readyState === WebSocket.OPEN && socket.bufferedAmount < 256 * 1024) {
      const frame = badFrames[i++ % badFrames.length]!;
      socket.send(frame, { binary: Buffer.isBuffer(frame) });
      sent++;
      if (i % 64 === 0) break;
    }
    if (socket.readyState === WebSocket.OPEN) setImmediate(pump);
  };
  socket.on('open', () => {
    if (attack === 'bad-frames') return pump();
    if (expensive) {
      const frame = target === url ? expensive.hello : expensive.init;
      socket.send(frame);
      socket.send(frame);
      sent += 2;
    }
  });
  socket.on('unexpected-response', (_req, res) => {
    refused[res.statusCode ?? 0] = (refused[res.statusCode ?? 0] ?? 0) + 1;
    res.resume();
    socket.terminate();
  });
  socket.on('message', () => undefined);
  socket.on('error', () => undefined);
  socket.on('close', (code) => {
    closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    setImmediate(() => connect(k));
  });
}

process.on('SIGTERM', () => {
  stopping = true;
  // Writes to a pipe are asynchronous: exit only once the line is out.
  process.stdout.write(`${JSON.stringify({ attack, sent, opened, refused, closeCodes })}\n`, () => process.exit(0));
});

for (let k = 0; k < count; k++) connect(k);
// The parent starts measuring only after this line (a SIGTERM before it would find no handler).
process.stdout.write('ready\n');
