import { generatorModes } from './bench-ipc.js';
import { closeGenerators, connectGenerators, remaining, settle, startAuthority, startEchoServer, stopAuthority, memoryFigures, type AuthorityProcess, type MemoryFigures, type PhaseOptions } from './bench-phases.js';
import { stopChild, within, type MemoryKb } from './bench-processes.js';

/** `npm run bench -- --idle M`: memory per idle connection, the bare ws echo server against the authority. */

export interface IdleResult {
  /** Right after every connection is up (and, for the authority, every peer welcomed). */
  readonly echo: MemoryFigures;
  readonly authority: MemoryFigures;
  /** The same connections after `idleHoldMs` more of idling: what an idle peer costs once the join burst's garbage is collected. */
  readonly echoHeld: MemoryFigures;
  readonly authorityHeld: MemoryFigures;
  /** The authority's V8 heap (its own /metrics), MB: after the joins and after the hold. */
  readonly authorityHeapMb: { readonly base: HeapMb; readonly joined: HeapMb; readonly held: HeapMb };
  readonly holdSec: number;
  readonly authorityAssigned: number;
  /** Error frames by code and connections the authority closed: each one is a peer not measured idle. */
  readonly errors: Readonly<Record<string, number>>;
  readonly unexpectedCloses: number;
}

export interface HeapMb {
  readonly used: number;
  readonly total: number;
}

/** The authority's V8 heap in use and reserved, from the process metrics it exports. */
async function heapOf(a: AuthorityProcess): Promise<HeapMb> {
  const res = await fetch(`${a.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  const pick = (name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in the authority's /metrics`);
    return Math.round(Number(m[1]) / 104857.6) / 10;
  };
  return { used: pick('nodejs_heap_size_used_bytes'), total: pick('nodejs_heap_size_total_bytes') };
}

/** Holds the connections for `ms`, then reads memory again (the generators' connections stay silent). */
async function hold(pid: number, ms: number): Promise<MemoryKb> {
  await new Promise((r) => setTimeout(r, ms));
  return settle(pid);
}

/**
 * `--idle M`: M silent connections to each server; the authority's peers said hello and hold a step or wait.
 * Memory is read right after the connections are up and again after a hold: V8 keeps the garbage of the
 * join burst (10,000 hellos at once) until its memory reducer runs a compacting collection on an idle
 * process, typically within one to two minutes, so the figure after the hold is the cost of an idle peer
 * and the one before it the cost right after a join burst. Both servers are held the same time.
 */
export async function idlePhase(o: PhaseOptions): Promise<IdleResult> {
  const deadline = o.deadlineMs;
  const holdMs = o.idleHoldMs ?? 0;
  const echo = await startEchoServer(o, deadline);
  let echoMemory: MemoryFigures;
  let echoHeld: MemoryFigures;
  try {
    const pid = echo.child.pid!;
    const base = await settle(pid);
    const gens = await connectGenerators(o, generatorModes.idleEcho, echo.url, deadline);
    const loaded = await settle(pid);
    echoMemory = memoryFigures(base, loaded, o.peers);
    o.log(`idle echo baseline: ${o.peers} connections, ${echoMemory.perConnectionKb} KB each; holding ${holdMs / 1000} s`);
    echoHeld = memoryFigures(base, await hold(pid, holdMs), o.peers);
    o.log(`idle echo baseline after the hold: ${echoHeld.perConnectionKb} KB each`);
    await closeGenerators(gens, deadline);
  } finally {
    await stopChild(echo.child);
  }
  const authority = await startAuthority(o, deadline);
  try {
    const pid = authority.child.pid!;
    const base = await settle(pid);
    const baseHeap = await heapOf(authority);
    const gens = await connectGenerators(o, generatorModes.idleProtocol, authority.url, deadline);
    for (const g of gens) g.send({ kind: 'go' });
    const done = await within(Promise.all(gens.map((g) => g.next('done'))), remaining(deadline), 'every idle peer to be welcomed');
    const loaded = await settle(pid);
    const joinedHeap = await heapOf(authority);
    const authorityMemory = memoryFigures(base, loaded, o.peers);
    o.log(`idle authority: ${o.peers} peers joined, ${authorityMemory.perConnectionKb} KB each (heap ${joinedHeap.used} of ${joinedHeap.total} MB); holding ${holdMs / 1000} s`);
    const authorityHeld = memoryFigures(base, await hold(pid, holdMs), o.peers);
    const heldHeap = await heapOf(authority);
    o.log(`idle authority after the hold: ${authorityHeld.perConnectionKb} KB each (heap ${heldHeap.used} of ${heldHeap.total} MB)`);
    await closeGenerators(gens, deadline);
    const errors: Record<string, number> = {};
    for (const d of done) for (const [code, n] of Object.entries(d.result.errors)) errors[code] = (errors[code] ?? 0) + n;
    return {
      echo: echoMemory,
      authority: authorityMemory,
      echoHeld,
      authorityHeld,
      authorityHeapMb: { base: baseHeap, joined: joinedHeap, held: heldHeap },
      holdSec: holdMs / 1000,
      authorityAssigned: done.reduce((s, d) => s + d.result.rounds, 0),
      errors,
      unexpectedCloses: done.reduce((s, d) => s + d.result.unexpectedCloses, 0),
    };
  } finally {
    await stopAuthority(authority);
  }
}
