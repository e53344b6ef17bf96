import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * `npx tsx bench/bench-frame-write.ts [--clients C] [--frames N] [--blocks B]`: the server's CPU
 * per frame on the authority's write path, two ways, in one process, alternating blocks:
 *
 * - `ws.send`: what SocketSession.write does (ws queues the header and the text as two chunks on
 *   the TCP socket, corked for the turn);
 * - `textFrame`: the frame built here as one Buffer (the same bytes, checked at start against ws's
 *   own framing) and written to the corked TCP socket: one chunk, no per-frame options object or
 *   header Buffer. An experiment of the sixth session, kept to show why the authority still uses
 *   `ws.send`: the two cost the same within the machine's noise (docs/performance.md).
 *
 * C clients (a child process, so their CPU is not counted) answer every frame with a small one,
 * as peers answer an assign with step.finished; the server writes the next frame on each answer,
 * corked for the turn and uncorked on process.nextTick, as socket-session.ts does. CPU is this
 * process's user + system time (every thread) over N frames per block, reading the answers
 * included (the same for both ways). Prints one line per block and one JSON line.
 */

const frame = JSON.stringify({ type: 'assign', cohortId: 'c_AbCdEfGhIjKl', stepId: 's123', leaseId: 'l_AbCdEfGhIjKl0001', attempt: 1, backup: false });

/** An unmasked, final WebSocket text frame (RFC 6455 §5.2) as one Buffer. */
function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8');
  const header = length <= 125 ? 2 : length <= 0xffff ? 4 : 10;
  const out = Buffer.allocUnsafe(header + length);
  out[0] = 0x81;
  if (header === 2) out[1] = length;
  else if (header === 4) {
    out[1] = 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(length, 6);
  }
  out.write(text, header, length, 'utf8');
  return out;
}

/** ws's framing (exported at run time as `WebSocket.Sender`, not in its type declarations). */
const { Sender } = createRequire(import.meta.url)('ws') as { Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] } };

function checkTextFrame(): void {
  for (const text of [frame, 'x'.repeat(126), 'é'.repeat(40_000), 'y'.repeat(70_000)]) {
    const theirs = Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
    if (!textFrame(text).equals(theirs)) throw new Error(`textFrame differs from ws's framing for ${Buffer.byteLength(text)} bytes`);
  }
}

interface Tcp {
  cork(): void;
  uncork(): void;
  write(b: Buffer): boolean;
}

function client(url: string, count: number): void {
  let open = 0;
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => ++open === count && process.send!('ready'));
    ws.on('message', () => ws.send('{"type":"step.finished"}'));
  }
  process.on('disconnect', () => process.exit(0));
}

async function main(): Promise<void> {
  checkTextFrame();
  const arg = (name: string, fallback: number): number => {
    const at = process.argv.indexOf(`--${name}`);
    return at >= 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const clients = arg('clients', 200);
  const frames = arg('frames', 100_000);
  const blocks = arg('blocks', 6);
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const sockets: WebSocket[] = [];
  server.on('connection', (ws) => void sockets.push(ws));
  const child = fork(fileURLToPath(import.meta.url), ['client', url, String(clients)], { execArgv: ['--import', 'tsx'] });
  await once(child, 'message');

  let way: 'ws.send' | 'textFrame' = 'ws.send';
  let sent = 0;
  let target = 0;
  let done: (() => void) | null = null;
  const corked = new Set<Tcp>();
  const uncorkAll = (): void => {
    for (const tcp of corked) tcp.uncork();
    corked.clear();
  };
  const write = (ws: WebSocket): void => {
    const tcp = (ws as unknown as { _socket: Tcp })._socket;
    if (!corked.has(tcp)) {
      if (corked.size === 0) process.nextTick(uncorkAll);
      corked.add(tcp);
      tcp.cork();
    }
    if (way === 'ws.send') ws.send(frame);
    else tcp.write(textFrame(frame));
  };
  for (const ws of sockets) {
    ws.on('message', () => {
      if (sent < target) {
        sent++;
        write(ws);
      } else if (done && sent === target) {
        const d = done;
        done = null;
        d();
      }
    });
  }
  const results: { way: string; cpuUsPerFrame: number; load: number }[] = [];
  // Two unmeasured blocks first (one each way), so V8 has compiled both paths before any is measured.
  for (let b = -2; b < blocks; b++) {
    way = (b + 2) % 2 === 0 ? 'ws.send' : 'textFrame';
    sent = 0;
    target = frames;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const before = process.cpuUsage();
    for (const ws of sockets) {
      sent++;
      write(ws);
    }
    await finished;
    const used = process.cpuUsage(before);
    if (b < 0) continue;
    const cpuUsPerFrame = Math.round(((used.user + used.system) / frames) * 100) / 100;
    results.push({ way, cpuUsPerFrame, load: Math.round(loadavg()[0]! * 100) / 100 });
    process.stderr.write(`block ${b + 1}: ${way} ${cpuUsPerFrame} µs CPU per frame (load ${loadavg()[0]!.toFixed(2)})\n`);
    // Let the last answers drain before the next block.
    await new Promise((r) => setTimeout(r, 300));
  }
  child.kill();
  for (const ws of sockets) ws.terminate();
  await new Promise((r) => server.close(r));
  const median = (w: string): number => {
    const xs = results.filter((r) => r.way === w).map((r) => r.cpuUsPerFrame).sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)]!;
  };
  process.stdout.write(`${JSON.stringify({ bench: 'frame-write', clients, framesPerBlock: frames, frameBytes: Buffer.byteLength(frame), results, median: { wsSend: median('ws.send'), textFrame: median('textFrame') } })}\n`);
}

if (process.argv[2] === 'client') client(process.argv[3]!, Number(process.argv[4]));
else await main();
