import WebSocket from 'ws';
import {
  decodeTaskDirectorServerFrame,
  type TdBuildInstruction,
  type TdError,
  type TdInit,
  type TdSchemaComplete,
  type TdServerFrame,
} from '../../shared/task-director-protocol.js';

/**
 * A test client written to the original Task Director wire format (raw JSON
 * frames, numeric `message_type`), not to taskshard's code paths. Every frame
 * it receives is checked against the old protocol, and it records what the
 * original Python client would have choked on (`violations`): a frame it
 * cannot dispatch, or a BUILD_INSTRUCTION while it is running a task.
 * Tests wait for frames by predicate, never by sleeping.
 */

export interface RepoStateEntry {
  base_ref: string;
  patchset: string;
  additional_patchsets?: string[];
}

export interface InitOptions {
  readonly totalTasks: number;
  readonly repoState?: Record<string, RepoStateEntry>;
  readonly patchset?: string;
  readonly additional?: string[];
  readonly complexPatchset?: boolean;
  readonly cacheId?: string;
  readonly schemaId?: string;
}

/** An INIT frame exactly as the original client sends it. */
export function initFrame(o: InitOptions): TdInit {
  const entry: RepoStateEntry = { base_ref: 'main', patchset: o.patchset ?? 'p1' };
  if (o.additional) entry.additional_patchsets = o.additional;
  return {
    message_type: 1,
    repo_state: o.repoState ?? { 'org/repo_1': entry },
    complex_patchset: o.complexPatchset ?? false,
    cache_id: o.cacheId ?? '1',
    schema_id: o.schemaId ?? 'build',
    total_tasks: o.totalTasks,
  };
}

export const isBuild = (f: TdServerFrame): f is TdBuildInstruction => f.message_type === 2;
export const isSchemaComplete = (f: TdServerFrame): f is TdSchemaComplete => f.message_type === 4;
export const isError = (f: TdServerFrame): f is TdError => f.message_type === 5 && 'error' in f;
export const isAbort = (f: TdServerFrame): boolean => f.message_type === 5 && !('error' in f);

/** The Task Director URL on a test server (`httpUrl` as in test/helpers/server.ts). */
export function tdUrl(httpUrl: string, clientId: string, apiVersion = '1', trailingSlash = true): string {
  return `${httpUrl.replace(/^http/, 'ws')}/ws/api/${apiVersion}/${clientId}${trailingSlash ? '/' : ''}`;
}

export class TdClient {
  readonly received: TdServerFrame[] = [];
  /** Things the original client would have crashed or misbehaved on. */
  readonly violations: string[] = [];
  /** The task this client is running, as the original tracks it. */
  running: string | null = null;
  schemaId = 'build';
  closeCode: number | null = null;
  closeReason = '';
  private waiters: { match: (f: TdServerFrame) => boolean; resolve: (f: TdServerFrame) => void; from: number }[] = [];
  private closeWaiters: ((code: number) => void)[] = [];

  private constructor(
    readonly clientId: string,
    readonly socket: WebSocket,
  ) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        this.violations.push('binary frame');
        return;
      }
      const decoded = decodeTaskDirectorServerFrame(data.toString());
      if (!decoded.ok) {
        this.violations.push(`frame the original client cannot dispatch: ${decoded.problem}: ${data.toString().slice(0, 200)}`);
        return;
      }
      this.onFrame(decoded.frame);
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.closeWaiters) w(code);
      this.closeWaiters = [];
    });
  }

  static connect(url: string, clientId: string, options: { token?: string } = {}): Promise<TdClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: options.token ? { authorization: `Bearer ${options.token}` } : {} });
      const client = new TdClient(clientId, socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => {
        reject(new Error(`HTTP ${res.statusCode}`));
        res.resume();
        socket.terminate();
      });
    });
  }

  private onFrame(frame: TdServerFrame): void {
    if (isBuild(frame)) {
      if (this.running !== null) this.violations.push(`BUILD_INSTRUCTION for task ${frame.task_id} while running task ${this.running} (the original raises)`);
      this.running = frame.task_id;
    } else if (isAbort(frame)) {
      const abort = frame as { task_id: string };
      if (this.running !== null && this.running !== abort.task_id) {
        this.violations.push(`ABORT_TASK for task ${abort.task_id} while running task ${this.running} (the original aborts whatever it runs)`);
      }
      this.running = null;
    }
    this.received.push(frame);
    const index = this.received.length - 1;
    this.waiters = this.waiters.filter((w) => {
      if (index >= w.from && w.match(frame)) {
        w.resolve(frame);
        return false;
      }
      return true;
    });
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(data, { binary: options.binary ?? false });
  }

  init(options: InitOptions): void {
    const frame = initFrame(options);
    this.schemaId = frame.schema_id;
    this.send(frame);
  }

  /** TASK_COMPLETE as the original sends it once its task ended. */
  complete(taskId: string, success = true): void {
    if (this.running === taskId) this.running = null;
    this.send({ message_type: 3, schema_id: this.schemaId, task_id: taskId, task_success: success });
  }

  /** The first frame (already received or still to come) from index `from` on that matches. */
  waitFor<T extends TdServerFrame>(match: (f: TdServerFrame) => f is T, from?: number, timeoutMs?: number): Promise<T>;
  waitFor(match: (f: TdServerFrame) => boolean, from?: number, timeoutMs?: number): Promise<TdServerFrame>;
  waitFor(match: (f: TdServerFrame) => boolean, from = 0, timeoutMs = 10_000): Promise<TdServerFrame> {
    const found = this.received.slice(from).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.clientId}: timed out waiting for a frame; got ${JSON.stringify(this.received)}`)),
        timeoutMs,
      );
      this.waiters.push({ match, from, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** The next BUILD_INSTRUCTION or SCHEMA_COMPLETE at or after index `from`. */
  next(from: number, timeoutMs?: number): Promise<TdBuildInstruction | TdSchemaComplete> {
    return this.waitFor((f): f is TdBuildInstruction | TdSchemaComplete => isBuild(f) || isSchemaComplete(f), from, timeoutMs);
  }

  errors(): TdError[] {
    return this.received.filter(isError);
  }

  closed(timeoutMs = 10_000): Promise<number> {
    if (this.closeCode !== null) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.clientId}: timed out waiting for close`)), timeoutMs);
      this.closeWaiters.push((code) => (clearTimeout(timer), resolve(code)));
    });
  }

  close(): Promise<number> {
    if (this.closeCode === null) this.socket.close(1000);
    return this.closed();
  }

  /** Drops the TCP connection without a close frame (a crashed CI job). */
  kill(): Promise<number> {
    if (this.closeCode === null) this.socket.terminate();
    return this.closed();
  }
}

/**
 * Behaves like the original client after INIT: runs each task it is given
 * (zero duration), reports it, and stops at SCHEMA_COMPLETE, closing its
 * socket as the original does. `fail(taskId)` decides which runs fail.
 * Resolves with the task ids it ran, in order.
 */
export async function runLikeOriginal(
  client: TdClient,
  options: { fail?: (taskId: string) => boolean; from?: number; timeoutMs?: number } = {},
): Promise<string[]> {
  const ran: string[] = [];
  let from = options.from ?? 0;
  for (;;) {
    const frame = await client.next(from, options.timeoutMs);
    from = client.received.indexOf(frame) + 1;
    if (isSchemaComplete(frame)) {
      await client.close();
      return ran;
    }
    ran.push(frame.task_id);
    client.complete(frame.task_id, !(options.fail?.(frame.task_id) ?? false));
  }
}
