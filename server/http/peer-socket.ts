import type { WebSocket } from 'ws';
import { closeCodes } from '../../shared/close-codes.js';
import { decodePeerMessage } from '../../shared/frames.js';
import { protocolVersion, type Hello, type ServerMessage } from '../../shared/protocol.js';
import type { Effect } from '../core/effects.js';
import { encodeComplete } from './complete-encoder.js';
import { checkHello, helloTokens } from './hello-input.js';
import { v1ConnectionMachine, type V1ConnectionState } from './connection-state.js';
import { v1Delivery } from './v1-frames.js';
import { ServerSocket, SocketSession, type SocketDeps } from './socket-session.js';
import { UpdateCoalescer } from './update-coalescer.js';

export { LivenessMonitor, ServerSocket } from './socket-session.js';

/**
 * JSON of a rendered frame. A broadcast (`step.update`: one message object for every
 * member, v1-frames.ts) is encoded once however many connections it reaches; a `complete`
 * has its members' shared part encoded once (complete-encoder.ts); any other frame is one
 * connection's own, and remembering it would cost more than it saves.
 */
const encoded = new WeakMap<ServerMessage, string>();
function encode(message: ServerMessage): string {
  if (message.type === 'complete') return encodeComplete(message);
  if (message.type !== 'step.update') return JSON.stringify(message);
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
 * - a frame: the shared limits (socket-session.ts: rate, size, strikes,
 *   binary), zod decoding, then one core input to `Authority.submit` (hello,
 *   step.finished, bye); whether a peer joined on this connection, lease
 *   fencing and draining are the core's to decide;
 * - an effect for this connection (after its transition is committed):
 *   rendered by `v1Delivery` (v1-frames.ts) and written (other steps'
 *   successes batched for peers that asked, update-coalescer.ts);
 * - the close: the core is told `disconnected`.
 */
export function handlePeerSocket(socket: WebSocket, deps: PeerSocketDeps): void {
  if (!(socket instanceof ServerSocket)) throw new Error('handlePeerSocket: the WebSocket server must make ServerSocket sockets (options.WebSocket)');
  new PeerConnection(socket, deps);
}

class PeerConnection extends SocketSession {
  /** See connection-state.ts. */
  private state: V1ConnectionState = 'awaiting-hello';
  /** Holds other steps' successes for peers that asked for them batched (update-coalescer.ts). */
  private updates: UpdateCoalescer | null = null;
  /** The peer id of the last hello (log lines name it). */
  private peerId: string | null = null;

  constructor(
    socket: ServerSocket,
    protected override readonly deps: PeerSocketDeps,
  ) {
    super(socket, deps);
  }

  private to(next: V1ConnectionState): void {
    v1ConnectionMachine.check('v1 connection', this.state, next);
    this.state = next;
  }

  protected logBindings(): Record<string, unknown> {
    return this.peerId === null ? { connId: this.connId } : { peerId: this.peerId, connId: this.connId };
  }

  deliver(effect: Effect): void {
    if (effect.kind === 'joined') this.joined();
    const delivery = v1Delivery(effect);
    for (const message of delivery.messages) {
      if (message.type === 'welcome') this.write(JSON.stringify({ ...message, server: { name: 'taskshard', version: this.deps.version } }));
      else if (this.updates) this.updates.deliver(message);
      else this.write(encode(message));
    }
    if (delivery.close) this.closeNow(delivery.close.code, delivery.close.reason);
  }

  private onHello(hello: Hello): void {
    if (hello.protocol !== protocolVersion) {
      return this.sendError('UNSUPPORTED_PROTOCOL', `this authority speaks protocol ${protocolVersion}; the peer asked for ${hello.protocol}`);
    }
    const checked = checkHello(hello);
    if (!checked.ok) {
      if (checked.refusal === 'schema-mismatch') return this.sendError('SCHEMA_MISMATCH', checked.message);
      // A digest-first hello naming a schema this authority does not hold: the peer sends the hello
      // again with its schema, on this connection (cheaper than a new one; the hello deadline runs on),
      // and that hello may be as large as a first frame.
      this.allowBulkyFrame();
      return this.sendError('UNKNOWN_SCHEMA', checked.message);
    }
    // Only a peer that asked for batched successes needs the coalescer; a later hello may still ask.
    if (this.updates !== null) this.updates.enable(hello.coalescedUpdates === true);
    else if (hello.coalescedUpdates === true) (this.updates = new UpdateCoalescer(this, encode)).enable(true);
    this.to('hello-sent');
    // Whether it joins (or is refused, or already joined on this connection) is the core's decision.
    this.peerId = hello.peerId;
    this.rebindLog();
    this.deps.authority.submit({
      kind: 'hello',
      connId: this.connId,
      peerId: hello.peerId,
      registration: checked.registration,
      schema: checked.schema,
      digest: checked.digest,
      ...helloTokens(hello),
      targetedUpdates: hello.targetedUpdates === true,
      currentStep: hello.currentStep ?? null,
      resumable: true,
    });
  }

  protected onText(text: string): boolean {
    const decoded = decodePeerMessage(text);
    if (!decoded.ok) {
      this.strike('BAD_MESSAGE', decoded.problem);
      return false;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'hello':
        this.onHello(message);
        break;
      case 'step.finished':
        // The core knows which peer joined on this connection, and refuses NOT_JOINED if none did.
        this.deps.authority.submit({
          kind: 'finished',
          connId: this.connId,
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
        this.deps.authority.submit({ kind: 'bye', connId: this.connId });
        this.to('closing');
        this.closeAfter(closeCodes.normal, 'bye');
        break;
    }
    return true;
  }

  protected onClosed(): void {
    this.updates?.dispose();
    this.to('closed');
    this.deps.authority.submit({ kind: 'disconnected', connId: this.connId });
  }
}
