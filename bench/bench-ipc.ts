import type { LoadClient } from './load-ws-client.js';

/**
 * Messages between the benchmark orchestrator and its load-generator
 * processes (Node IPC channel, structured clone).
 */

export const generatorModes = Object.freeze({
  /** Closed loop against the bare ws echo server: send a frame, wait for the echo, repeat. */
  echo: 'echo',
  /** Closed loop against the authority: hello, then finish every assigned step at once. */
  protocol: 'protocol',
  /**
   * Closed loop in the original Task Director format (`/ws/api/1/<client>/`): INIT, then
   * TASK_COMPLETE for every BUILD_INSTRUCTION until SCHEMA_COMPLETE. The same client drives
   * taskshard and the original Python server (bench/original/).
   */
  taskDirector: 'task-director',
  /** Connect to the echo server and stay silent. */
  idleEcho: 'idle-echo',
  /** Connect to the authority, say hello, take the first frame, then stay silent (a peer busy building). */
  idleProtocol: 'idle-protocol',
});
export type GeneratorMode = (typeof generatorModes)[keyof typeof generatorModes];

export interface GeneratorConfig {
  readonly kind: 'config';
  readonly mode: GeneratorMode;
  /** The WebSocket client every connection uses (bench/load-ws-client.ts). */
  readonly client: LoadClient;
  /** ws:// URL; in task-director mode the server's origin, each client adding `/ws/api/1/<client id>/`. */
  readonly url: string;
  /** Loopback source address for this generator's sockets (spreads ephemeral ports). */
  readonly localAddress: string;
  /** Global index of this generator's first peer, and how many it runs. */
  readonly firstPeer: number;
  readonly count: number;
  readonly cohortSize: number;
  readonly stepsPerCohort: number;
  /** Echo mode: how long to run the closed loop. */
  readonly windowMs: number;
  /** Connections opened at once while connecting. */
  readonly connectConcurrency: number;
  /**
   * Which pass against the same server process this is (0 = the first, on a fresh process). Every
   * pass has its own peer ids and patchsets (`bench<pass>-<index>`, `refs/changes/<cohort>/<pass + 1>`),
   * so a later pass forms new cohorts and nothing of an earlier pass is matched, resumed or reused.
   */
  readonly pass: number;
}

/** `close` ends the pass's connections (answered by `closed`); `exit` ends the process. */
export type ParentMessage = GeneratorConfig | { readonly kind: 'go' } | { readonly kind: 'close' } | { readonly kind: 'exit' };

export interface GeneratorResult {
  /** Echo round trips, or `assign` (BUILD_INSTRUCTION) frames received. */
  readonly rounds: number;
  /** Every frame received from the server (the authority also sends welcome, wait, step.update, complete). */
  readonly framesReceived: number;
  /** Epoch ms (timeOrigin + performance.now()) of the first send and of the last frame counted. */
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  /** Request -> answer latency samples, ms. */
  readonly latenciesMs: number[];
  readonly completes: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly unexpectedCloses: number;
}

export type ChildMessage =
  | { readonly kind: 'connected'; readonly count: number; readonly failed: number; readonly firstError: string | null }
  | { readonly kind: 'done'; readonly result: GeneratorResult }
  | { readonly kind: 'closed' }
  | { readonly kind: 'fatal'; readonly message: string };
