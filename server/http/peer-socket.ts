import type { WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import { decodePeerMessage } from '../../shared/frames.js';
import { protocolVersion, type Hello, type PeerMessage, type ServerMessage } from '../../shared/protocol.js';
import { hashToken } from './auth.js';
import { checkHello, freshToken } from './hello-input.js';
import { v1ConnectionMachine, type V1ConnectionState } from './connection-state.js';
import { v1Delivery } from './v1-frames.js';
import { openSocketSession, type SocketDeps, type SocketSession } from './socket-session.js';
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
 * One protocol-v1 connection on `GET /v1/peer`: frames in, zod-validated, turned
 * into core inputs. Rate limit, strikes, error frames, liveness and the
 * slow-reader cutoff come from {@link openSocketSession}.
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

  const onHello = (session: SocketSession, hello: Hello): void => {
    if (hello.protocol !== protocolVersion) {
      return session.sendError('UNSUPPORTED_PROTOCOL', `this authority speaks protocol ${protocolVersion}; the peer asked for ${hello.protocol}`);
    }
    const checked = checkHello(hello);
    if (!checked.ok) return session.sendError('SCHEMA_MISMATCH', checked.message);
    updates ??= new UpdateCoalescer((text) => session.write(text), encode);
    updates.enable(hello.coalescedUpdates === true);
    to('hello-sent');
    // Whether it joins (or is refused, or already joined on this connection) is the core's decision.
    if (state === 'hello-sent') session.log = deps.log.child({ peerId: hello.peerId, connId: session.connId });
    authority.submit({
      kind: 'hello',
      connId: session.connId,
      peerId: hello.peerId,
      registration: checked.registration,
      schema: checked.schema,
      digest: checked.digest,
      presentedToken: hello.resumeToken ? { token: hello.resumeToken, hash: hashToken(hello.resumeToken) } : null,
      freshToken: freshToken(),
      currentStep: hello.currentStep ?? null,
      resumable: true,
    });
  };

  const onMessage = (session: SocketSession, message: PeerMessage): void => {
    switch (message.type) {
      case 'hello':
        onHello(session, message);
        return;
      case 'step.finished':
        // The core knows which peer joined on this connection, and refuses NOT_JOINED if none did.
        authority.submit({
          kind: 'finished',
          connId: session.connId,
          leaseId: message.leaseId,
          stepId: message.stepId,
          ok: message.ok,
          exitCode: message.exitCode,
          durationMs: message.durationMs,
          logTail: message.logTail ?? null,
          unpublished: message.unpublished === true,
        });
        return;
      case 'bye':
        authority.submit({ kind: 'bye', connId: session.connId });
        to('closing');
        session.closeAfter(closeCodes.normal, 'bye');
        return;
    }
  };

  openSocketSession(
    socket,
    deps,
    {
      deliver(session, effect) {
        const delivery = v1Delivery(effect);
        for (const message of delivery.messages) {
          if (message.type === 'welcome') session.write(JSON.stringify({ ...message, server: { name: 'taskshard', version: deps.version } }));
          else if (updates) updates.deliver(message);
          else session.write(encode(message));
        }
        if (delivery.close) session.closeNow(delivery.close.code, delivery.close.reason);
      },
      onText(session, text) {
        const decoded = decodePeerMessage(text);
        if (!decoded.ok) {
          session.strike('BAD_MESSAGE', decoded.problem);
          return false;
        }
        onMessage(session, decoded.message);
        return true;
      },
      onClose(session) {
        updates?.dispose();
        to('closed');
        authority.submit({ kind: 'disconnected', connId: session.connId });
      },
    },
    deps.log,
  );
}
