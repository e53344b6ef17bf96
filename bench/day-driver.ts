import WebSocket from 'ws';
import type { Hello, WireSchema } from '../shared/protocol.js';

/**
 * The day benchmark's peers: cohort after cohort of `peersPerCohort` real
 * WebSocket peers (protocol v1), each with its own exact source state (a base
 * sha per cohort), finishing every step it is assigned at once; a cohort is
 * done when all its peers got `complete` and closed. `concurrency` cohorts
 * are in flight at a time, so the authority never idles.
 */
export interface DriverOptions {
  readonly wsUrl: string;
  readonly cohorts: number;
  readonly peersPerCohort: number;
  readonly schema: WireSchema;
  readonly concurrency: number;
  /** Called with the index of each cohort as it completes, in completion order. */
  readonly onCohortDone: (index: number, atMs: number) => void;
}

export interface DriverResult {
  readonly errors: Readonly<Record<string, number>>;
  readonly assigns: number;
}

function shaOf(i: number): string {
  return i.toString(16).padStart(40, '0');
}

/** One peer from hello to `complete` (then it closes); rejects on an unexpected close. */
function runPeer(wsUrl: string, hello: Hello, errors: Record<string, number>, count: { assigns: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}/v1/peer`, { perMessageDeflate: false });
    let done = false;
    socket.on('open', () => socket.send(JSON.stringify(hello)));
    socket.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { type: string; leaseId?: string; stepId?: string; code?: string };
      if (m.type === 'assign') {
        count.assigns++;
        socket.send(JSON.stringify({ type: 'step.finished', leaseId: m.leaseId, stepId: m.stepId, ok: true, exitCode: 0, durationMs: 5 }));
      } else if (m.type === 'complete') {
        done = true;
        socket.send(JSON.stringify({ type: 'bye' }));
        socket.close(1000);
        resolve();
      } else if (m.type === 'error') {
        errors[m.code ?? 'unknown'] = (errors[m.code ?? 'unknown'] ?? 0) + 1;
      }
    });
    socket.on('error', (err) => {
      if (!done) reject(err);
    });
    socket.on('close', (code) => {
      if (!done) reject(new Error(`peer ${hello.peerId} closed with ${code} before complete`));
    });
  });
}

export async function driveCohorts(o: DriverOptions): Promise<DriverResult> {
  const errors: Record<string, number> = {};
  const count = { assigns: 0 };
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < o.cohorts; i = next++) {
      const peers: Promise<void>[] = [];
      for (let k = 0; k < o.peersPerCohort; k++) {
        const hello: Hello = {
          type: 'hello',
          protocol: 1,
          peerId: `day-${i}-${k}`,
          repo: 'https://example.com/bench/monorepo.git',
          baseRef: 'main',
          baseSha: shaOf(i + 1),
          patchsets: [],
          pipeline: { name: 'check', type: 'independent' },
          isolated: false,
          cacheId: 'bench-cache',
          schema: o.schema,
        };
        peers.push(runPeer(o.wsUrl, hello, errors, count));
      }
      await Promise.all(peers);
      o.onCohortDone(i, performance.now());
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  return { errors, assigns: count.assigns };
}
