import type { RawData, WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import { decodePeerMessage } from '../../shared/frames.js';
import { protocolVersion, type Hello, type ServerMessage } from '../../shared/protocol.js';
import type { Effect } from '../core/effects.js';
import { checkHello, helloTokens } from './hello-input.js';
import { v1ConnectionMachine, type V1ConnectionState } from './connection-state.js';
import { v1Delivery } from './v1-frames.js';
import { SocketSession, type SocketDeps } from './socket-session.js';
import { UpdateCoalescer } from './update-coalescer.js';

export { LivenessMonitor } from './socket-session.js';

/** JSON of each rendered frame, computed once however many connections a broadcast reaches. */
const encoded = new WeakMap<ServerMessage, string>();
function encode(message: ServerMessage): string {
  let json = encoded.get(message);
  if (json === undefined) {
    json = JSON.stringify(message);
    encoded.set(message, json);
  }
  return json;
}
/** What a peer socket needs from the app; `version` goes out in every welcome so peers can warn on a mismatch. */
export type PeerSocketDeps = SocketDeps & { readonly version: string };

/**
 * One protocol-v1 connection on `GET /v1/peer`, top to bottom:
 *
 * - a frame: the shared limits ({@link SocketSession.admit}: rate, size,
 *   strikes, binary), zod decoding, then one core input to `Authority.submit`
 *   (hello, step.finished, bye); whether a peer joined on this connection,
 *   lease fencing and draining are the core's to decide;
 * - an effect for this connection (after its transition is committed):
 *   rendered by `v1Delivery` (v1-frames.ts) and written (other steps'
 *   successes batched for peers that asked, update-coalescer.ts);
 * - the close: the core is told `disconnected`.
 */
export function handlePeerSocket(socket: WebSocket, deps: PeerSocketDeps): void {
  const { authority } = deps;
  /** See connection-state.ts. */
  let state: V1ConnectionState = 'awaiting-hello';
  const to = (next: V1ConnectionState): void => {
    v1ConnectionMachine.check('v1 connection', state, next);
    state = next;
  };
  /** Holds other steps' successes for peers that asked for them batched (update-coalescer.ts). */
  let updates: UpdateCoalescer | null = null;

  const render = (effect: Effect): void => {
    if (effect.kind === 'joined') session.joined();
    const delivery = v1Delivery(effect);
    for (const message of delivery.messages) {
      if (message.type === 'welcome') session.write(JSON.stringify({ ...message, server: { name: 'taskshard', version: deps.version } }));
      else if (updates) updates.deliver(message);
      else session.write(encode(message));
    }
    if (delivery.close) session.closeNow(delivery.close.code, delivery.close.reason);
  };
  const connId = authority.openConnection({ deliver: render, close: (code, reason) => session.closeNow(code, reason) });
  const session = new SocketSession(socket, deps, connId, deps.log);

  const onHello = (hello: Hello): void => {
    if (hello.protocol !== protocolVersion) {
      return session.sendError('UNSUPPORTED_PROTOCOL', `this authority speaks protocol ${protocolVersion}; the peer asked for ${hello.protocol}`);
    }
    const checked = checkHello(hello);
    if (!checked.ok) return session.sendError('SCHEMA_MISMATCH', checked.message);
    updates ??= new UpdateCoalescer((text) => session.write(text), encode);
    updates.enable(hello.coalescedUpdates === true);
    to('hello-sent');
    // Whether it joins (or is refused, or already joined on this connection) is the core's decision.
    session.log = deps.log.child({ peerId: hello.peerId, connId });
    authority.submit({
      kind: 'hello',
      connId,
      peerId: hello.peerId,
      registration: checked.registration,
      schema: checked.schema,
      digest: checked.digest,
      ...helloTokens(hello),
      currentStep: hello.currentStep ?? null,
      resumable: true,
    });
  };

  /** One text frame; whether it was a valid v1 frame. */
  const onText = (text: string): boolean => {
    const decoded = decodePeerMessage(text);
    if (!decoded.ok) {
      session.strike('BAD_MESSAGE', decoded.problem);
      return false;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'hello':
        onHello(message);
        break;
      case 'step.finished':
        // The core knows which peer joined on this connection, and refuses NOT_JOINED if none did.
        authority.submit({
          kind: 'finished',
          connId,
          leaseId: message.leaseId,
          stepId: message.stepId,
          ok: message.ok,
          exitCode: message.exitCode,
          durationMs: message.durationMs,
          logTail: message.logTail ?? null,
          unpublished: message.unpublished === true,
        });
        break;
      case 'bye':
        authority.submit({ kind: 'bye', connId });
        to('closing');
        session.closeAfter(closeCodes.normal, 'bye');
        break;
    }
    return true;
  };

  socket.on('message', (data: RawData, isBinary: boolean) => {
    try {
      const text = session.admit(data, isBinary);
      if (text !== null) session.decoded(onText(text));
    } catch (err) {
      session.failed(err);
    }
  });

  socket.on('close', () => {
    session.closed();
    updates?.dispose();
    to('closed');
    authority.submit({ kind: 'disconnected', connId });
  });
}
