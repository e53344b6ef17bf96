import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import { taskDirectorPeerId } from '../../shared/ids.js';
import { errorCodes } from '../../shared/error-codes.js';
import { refusalCode, type Effect } from '../core/effects.js';
import { describeRefusal } from './refusal-text.js';
import {
  decodeTaskDirectorFrame,
  taskDirectorApiVersion,
  taskDirectorMessageType,
  taskDirectorRouteParamsSchema,
  type TdClientFrame,
  type TdInit,
  type TdServerFrame,
  type TdBuildInstruction,
  type TdTaskComplete,
} from '../../shared/task-director-protocol.js';
import { freshToken } from './hello-input.js';
import { tdConnectionMachine, type TdConnectionState } from './connection-state.js';
import { ServerSocket, SocketSession, type SocketDeps } from './socket-session.js';
import { taskDirectorJoin } from './task-director-registration.js';
import { releaseUpgradeRequest } from './ws-upgrade-release.js';

/**
 * The original Task Director client's protocol on `GET /ws/api/:apiVersion/:clientId/`,
 * served by the same authority (core and store) as `/v1/peer`.
 *
 * Connection states (connection-state.ts): awaiting-init -> joined (INIT went to the core) -> closed.
 * TASK_COMPLETE names no lease: it goes to the core as a report of the lease
 * this client holds, and the core fences it (no lease held: STALE_LEASE;
 * another task: UNKNOWN_STEP) and measures its duration from the lease's
 * start. A TASK_COMPLETE before INIT or for another schema never reaches the core.
 * These clients cannot resume (`resumable: false`): when one drops, its lease
 * is lost at once and the task goes to a waiting client.
 *
 * The core's effects map to the old wire format: `granted` -> BUILD_INSTRUCTION,
 * `complete` -> SCHEMA_COMPLETE, `abort` -> ABORT_TASK, `refuse` -> an
 * ABORT_TASK-shaped error frame (see shared/task-director-protocol.ts);
 * `joined`, `wait` and `step-changed` have no equivalent and are not sent.
 */
export function registerTaskDirectorRoute(scope: FastifyInstance, deps: SocketDeps): void {
  scope.get(
    '/ws/api/:apiVersion/:clientId/',
    {
      websocket: true,
      config: { access: 'peer' },
      // Runs before the upgrade: a bad URL gets an HTTP error and no WebSocket ever exists.
      preValidation: async (req, reply) => {
        const parsed = taskDirectorRouteParamsSchema.safeParse(req.params);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          await reply.code(400).send({ error: { code: 'BAD_MESSAGE', message: `${issue.path.join('.')}: ${issue.message}` } });
          return;
        }
        if (parsed.data.apiVersion !== taskDirectorApiVersion) {
          await reply.code(400).send({
            error: { code: 'UNSUPPORTED_PROTOCOL', message: `this authority serves Task Director API version ${taskDirectorApiVersion}, not ${parsed.data.apiVersion}` },
          });
        }
      },
    },
    (socket, req) => {
      releaseUpgradeRequest(socket, req);
      const { clientId } = taskDirectorRouteParamsSchema.parse(req.params);
      // Task Director clients have a peer-id namespace of their own (a v1 peer cannot take their ids).
      handleTaskDirectorSocket(socket, taskDirectorPeerId(clientId), deps);
    },
  );
}

/** `{"message_type":2,"type":"send.message","schema_id":...,"task_id":` — the frame's keys in tdBuildInstructionSchema's order. */
export function buildInstructionHead(schemaId: string): string {
  const frame: Omit<TdBuildInstruction, 'task_id'> = { message_type: taskDirectorMessageType.buildInstruction, type: 'send.message', schema_id: schemaId };
  return `${JSON.stringify(frame).slice(0, -1)},"task_id":`;
}

export function handleTaskDirectorSocket(socket: WebSocket, clientId: string, deps: SocketDeps): void {
  if (!(socket instanceof ServerSocket)) throw new Error('handleTaskDirectorSocket: the WebSocket server must make ServerSocket sockets (options.WebSocket)');
  new TaskDirectorConnection(socket, clientId, deps);
}

class TaskDirectorConnection extends SocketSession {
  /** See connection-state.ts. */
  private state: TdConnectionState = 'awaiting-init';
  /** The schema id as the client sent it, echoed in every frame. */
  private wireSchemaId: string | null = null;
  /**
   * A BUILD_INSTRUCTION's JSON up to its task id, made once per INIT: every task sends one, and
   * the rest is the task id's JSON and a brace (what JSON.stringify of the frame object makes).
   */
  private buildInstructionHead: string | null = null;

  constructor(
    socket: ServerSocket,
    private readonly clientId: string,
    deps: SocketDeps,
  ) {
    super(socket, deps);
  }

  private to(next: TdConnectionState): void {
    tdConnectionMachine.check(`Task Director connection ${this.clientId}`, this.state, next);
    this.state = next;
  }

  protected logBindings(): Record<string, unknown> {
    return { clientId: this.clientId, connId: this.connId, protocol: 'task-director', ...(this.wireSchemaId === null ? {} : { schemaId: this.wireSchemaId }) };
  }

  private send(frame: TdServerFrame): void {
    this.write(JSON.stringify(frame));
  }

  /** One core effect, in the old wire format (or nothing). The core fences leases: it aborts only a task this client runs. */
  deliver(effect: Effect): void {
    const wireSchemaId = this.wireSchemaId;
    switch (effect.kind) {
      case 'granted':
        this.buildInstructionHead ??= buildInstructionHead(wireSchemaId!);
        this.write(`${this.buildInstructionHead}${JSON.stringify(effect.stepId)}}`);
        return;
      case 'abort':
        this.send({ message_type: taskDirectorMessageType.abortTask, schema_id: wireSchemaId!, task_id: effect.stepId });
        return;
      case 'complete':
        this.send({ message_type: taskDirectorMessageType.schemaComplete, schema_id: wireSchemaId! });
        return;
      case 'refuse': {
        const code = refusalCode(effect.refusal);
        const r = effect.refusal;
        const message =
          r.kind === 'wrong-step' && r.leaseId === null
            ? `this connection holds task ${r.leaseStepId} of schema ${wireSchemaId}, not task ${r.stepId} of ${wireSchemaId}; nothing changed`
            : r.kind === 'not-joined'
              ? 'send INIT before TASK_COMPLETE; nothing changed'
              : r.kind === 'already-joined'
                ? `this connection already sent INIT as ${r.peerId}`
                : r.kind === 'shutting-down'
                  ? 'the authority is shutting down; build everything yourself or reconnect later'
                  : describeRefusal(r);
        this.send({
          message_type: taskDirectorMessageType.abortTask,
          ...(wireSchemaId === null ? {} : { schema_id: wireSchemaId }),
          error: { code, message, retryable: errorCodes[code].retryable },
        });
        const closeCode = errorCodes[code].closeCode;
        if (closeCode !== null) this.closeNow(closeCode, code);
        return;
      }
      case 'superseded':
        this.closeNow(closeCodes.superseded, 'replaced by a resumed connection');
        return;
      case 'close':
        this.closeNow(effect.code, effect.reason);
        return;
      case 'joined':
        this.joined();
        return; // no equivalent in the old protocol
      case 'wait':
      case 'step-changed':
      case 'stat':
      case 'notice':
        return; // no equivalent in the old protocol
    }
  }

  private onInit(init: TdInit): void {
    const join = taskDirectorJoin(init);
    if (this.state === 'awaiting-init') {
      // The first INIT names the schema echoed in every frame; a second one is refused by the core (ALREADY_JOINED).
      this.to('init-sent');
      this.wireSchemaId = init.schema_id;
      this.buildInstructionHead = null;
      this.rebindLog();
    }
    this.deps.authority.submit({
      kind: 'hello',
      connId: this.connId,
      peerId: this.clientId,
      registration: join.registration,
      schema: join.schema,
      digest: join.digest,
      presentedToken: null,
      freshToken: freshToken(),
      currentStep: null,
      resumable: false,
      // The old protocol has no step.update: no success needs to be addressed to this connection.
      targetedUpdates: true,
    });
  }

  private onTaskComplete(done: TdTaskComplete): void {
    const wireSchemaId = this.wireSchemaId;
    // Before INIT the core refuses it (NOT_JOINED): it knows which client joined on this connection.
    if (wireSchemaId !== null && done.schema_id !== wireSchemaId) {
      return this.sendError('UNKNOWN_STEP', `this connection runs schema ${wireSchemaId}, not ${done.schema_id}; nothing changed`);
    }
    // The frame names no lease: the core finishes the one this client holds, if it is for this task,
    // and measures the duration from the lease's start.
    this.deps.authority.submit({
      kind: 'finished',
      connId: this.connId,
      leaseId: null,
      stepId: done.task_id,
      ok: done.task_success,
      // The old protocol carries success only: no exit code, no log.
      exitCode: done.task_success ? 0 : null,
      durationMs: null,
      logTail: null,
    });
  }

  /** One text frame; whether it was a valid frame of the old protocol. */
  protected onText(text: string): boolean {
    // After INIT, the schema id it named (checked then) lets the hot TASK_COMPLETE skip zod.
    const decoded = decodeTaskDirectorFrame(text, this.wireSchemaId);
    if (decoded.ok) {
      const frame: TdClientFrame = decoded.frame;
      if (frame.message_type === taskDirectorMessageType.init) this.onInit(frame);
      else this.onTaskComplete(frame);
      return true;
    }
    if (decoded.claimedType === taskDirectorMessageType.init && this.state === 'awaiting-init') {
      // An INIT we cannot accept: without the close the original client would wait for a task forever.
      this.to('closing');
      this.sendError('BAD_MESSAGE', decoded.problem);
      this.closeAfter(closeCodes.policyViolation, 'invalid INIT');
      return false;
    }
    this.strike('BAD_MESSAGE', decoded.problem);
    return false;
  }

  protected onClosed(): void {
    this.to('closed');
    this.deps.authority.submit({ kind: 'disconnected', connId: this.connId });
  }
}
