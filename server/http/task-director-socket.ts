import type { FastifyInstance } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import { errorCodes, type ErrorCode } from '../../shared/error-codes.js';
import type { ServerMessage } from '../../shared/protocol.js';
import {
  decodeTaskDirectorFrame,
  taskDirectorApiVersion,
  taskDirectorMessageType,
  taskDirectorRouteParamsSchema,
  type TdClientFrame,
  type TdInit,
  type TdServerFrame,
  type TdTaskComplete,
} from '../../shared/task-director-protocol.js';
import type { ConnId } from '../core/core-types.js';
import { freshToken } from './hello-input.js';
import type { PeerSocketDeps } from './peer-socket.js';
import { TokenBucket } from './rate-limiter.js';
import { taskDirectorJoin } from './task-director-registration.js';

/**
 * The original Task Director client's protocol on `GET /ws/api/:apiVersion/:clientId/`,
 * served by the same authority (core and store) as `/v1/peer`.
 *
 * Connection states: new -> joined (INIT accepted for the core) -> closed.
 * The adapter remembers the one task (and its lease id) it gave the
 * connection: a TASK_COMPLETE for anything else, a repeat, or one before INIT
 * gets an error frame and never reaches the core, so it cannot change state.
 * These clients cannot resume (`resumable: false`): when one drops, its lease
 * is lost at once and the task goes to a waiting client.
 *
 * Core messages map to the old wire format: `assign` -> BUILD_INSTRUCTION,
 * `complete` -> SCHEMA_COMPLETE, `abort` -> ABORT_TASK, `error` -> an
 * ABORT_TASK-shaped error frame (see shared/task-director-protocol.ts);
 * `welcome`, `wait` and `step.update` have no equivalent and are not sent.
 */
export function registerTaskDirectorRoute(scope: FastifyInstance, deps: PeerSocketDeps): void {
  scope.get(
    '/ws/api/:apiVersion/:clientId/',
    {
      websocket: true,
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
      const { clientId } = taskDirectorRouteParamsSchema.parse(req.params);
      handleTaskDirectorSocket(socket, clientId, deps);
    },
  );
}

interface HeldTask {
  readonly taskId: string;
  readonly leaseId: string;
  readonly sinceMs: number;
}

export function handleTaskDirectorSocket(socket: WebSocket, clientId: string, deps: PeerSocketDeps): void {
  const { authority, config, clock } = deps;
  let joined = false;
  /** The schema id as the client sent it, echoed in every frame. */
  let wireSchemaId: string | null = null;
  let held: HeldTask | null = null;
  let strikes = 0;
  let closing = false;
  const bucket = new TokenBucket(config.rateLimitPerSec, config.rateLimitBurst, clock.now());

  const write = (frame: TdServerFrame): void => {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify(frame));
    if (socket.bufferedAmount > config.maxBufferedBytes) {
      log.warn({ bufferedBytes: socket.bufferedAmount }, 'client stopped reading; cutting it off');
      socket.terminate();
    }
  };

  /** One core message, in the old wire format (or nothing). */
  const deliver = (message: ServerMessage): void => {
    switch (message.type) {
      case 'assign':
        if (held !== null) log.error({ held: held.taskId, stepId: message.stepId }, 'second task for a client that holds one; replacing it');
        held = { taskId: message.stepId, leaseId: message.leaseId, sinceMs: clock.now() };
        write({ message_type: taskDirectorMessageType.buildInstruction, type: 'send.message', schema_id: wireSchemaId!, task_id: message.stepId });
        return;
      case 'abort':
        // Only the task this connection runs can be aborted; anything else it no longer runs.
        if (held?.leaseId !== message.leaseId) return;
        held = null;
        write({ message_type: taskDirectorMessageType.abortTask, schema_id: wireSchemaId!, task_id: message.stepId });
        return;
      case 'complete':
        held = null;
        write({ message_type: taskDirectorMessageType.schemaComplete, schema_id: wireSchemaId! });
        return;
      case 'error':
        write({
          message_type: taskDirectorMessageType.abortTask,
          ...(wireSchemaId === null ? {} : { schema_id: wireSchemaId }),
          error: { code: message.code, message: message.message, retryable: message.retryable },
        });
        return;
      case 'welcome':
      case 'wait':
      case 'step.update':
        return; // no equivalent in the old protocol
    }
  };

  const connId: ConnId = authority.openConnection({
    send: deliver,
    close(code: number, reason: string) {
      closing = true;
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
    },
  });
  let log = deps.log.child({ clientId, connId, protocol: 'task-director' });
  deps.liveness.add(socket);

  const sendError = (code: ErrorCode, message: string): void => {
    authority.enqueue({ kind: 'send', connId, message: { type: 'error', code, message, retryable: errorCodes[code].retryable } });
    const closeCode = errorCodes[code].closeCode;
    if (closeCode !== null) authority.enqueue({ kind: 'close', connId, code: closeCode, reason: code });
  };

  /** A bad frame or a flood: after `maxStrikes` the connection is closed with 1008. */
  const strike = (code: ErrorCode, message: string): void => {
    strikes++;
    if (strikes > config.maxStrikes) {
      if (!closing) {
        closing = true;
        log.warn({ strikes, code }, 'closing abusive connection');
        authority.enqueue({ kind: 'close', connId, code: closeCodes.policyViolation, reason: `too many bad frames (${code})` });
      }
      return;
    }
    sendError(code, message);
  };

  const onInit = (init: TdInit): void => {
    if (joined) return sendError('ALREADY_JOINED', `this connection already sent INIT as ${clientId}`);
    if (authority.isDraining) return sendError('SHUTTING_DOWN', 'the authority is shutting down; build everything yourself or reconnect later');
    const join = taskDirectorJoin(init);
    joined = true;
    wireSchemaId = init.schema_id;
    log = log.child({ schemaId: init.schema_id });
    authority.submit({
      kind: 'hello',
      connId,
      peerId: clientId,
      registration: join.registration,
      schema: join.schema,
      digest: join.digest,
      presentedToken: null,
      freshToken: freshToken(),
      currentStep: null,
      resumable: false,
    });
  };

  const onTaskComplete = (done: TdTaskComplete): void => {
    if (!joined) return sendError('NOT_JOINED', 'send INIT before TASK_COMPLETE; nothing changed');
    if (held === null) {
      return sendError('STALE_LEASE', `this connection holds no task (task ${done.task_id} was already reported, was aborted, or was never given to it); nothing changed`);
    }
    if (done.task_id !== held.taskId || done.schema_id !== wireSchemaId) {
      return sendError('UNKNOWN_STEP', `this connection holds task ${held.taskId} of schema ${wireSchemaId}, not task ${done.task_id} of ${done.schema_id}; nothing changed`);
    }
    const task = held;
    held = null;
    authority.submit({
      kind: 'finished',
      connId,
      peerId: clientId,
      leaseId: task.leaseId,
      stepId: task.taskId,
      ok: done.task_success,
      // The old protocol carries success only: no exit code, no log.
      exitCode: done.task_success ? 0 : null,
      durationMs: Math.max(0, clock.now() - task.sinceMs),
      logTail: null,
    });
  };

  const onFrame = (frame: TdClientFrame): void => {
    if (frame.message_type === taskDirectorMessageType.init) onInit(frame);
    else onTaskComplete(frame);
  };

  socket.on('message', (data: RawData, isBinary: boolean) => {
    deps.liveness.sawTraffic(socket);
    const frames = deps.metrics.frames;
    if (closing) return frames.inc({ result: 'ignored' });
    try {
      if (!bucket.take(clock.now())) {
        frames.inc({ result: 'rate_limited' });
        return strike('RATE_LIMITED', `more than ${config.rateLimitPerSec} frames per second; slow down`);
      }
      if (isBinary) {
        frames.inc({ result: 'bad' });
        return strike('BAD_MESSAGE', 'binary frames are not accepted; send JSON text frames');
      }
      const decoded = decodeTaskDirectorFrame(rawToString(data));
      frames.inc({ result: decoded.ok ? 'ok' : 'bad' });
      if (decoded.ok) return onFrame(decoded.frame);
      if (decoded.claimedType === taskDirectorMessageType.init && !joined) {
        // An INIT we cannot accept: without the close the original client would wait for a task forever.
        closing = true;
        sendError('BAD_MESSAGE', decoded.problem);
        authority.enqueue({ kind: 'close', connId, code: closeCodes.policyViolation, reason: 'invalid INIT' });
        return;
      }
      strike('BAD_MESSAGE', decoded.problem);
    } catch (err) {
      log.error({ err }, 'unexpected error handling a frame');
      sendError('INTERNAL', 'internal error; see the authority log');
    }
  });

  socket.on('error', (err) => log.debug({ err }, 'socket error'));

  socket.on('close', () => {
    deps.liveness.remove(socket);
    authority.closeConnection(connId);
    if (joined) authority.submit({ kind: 'disconnected', connId, peerId: clientId });
  });
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
