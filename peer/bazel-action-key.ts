import { createHash } from 'node:crypto';

/**
 * The remote-cache key of a Bazel action, recomputed from its execution-log entry. Bazel 4's JSON
 * execution log does not record the action digest (newer Bazels add a `digest` field, used when
 * present), so `builtin:bazel` rebuilds what Bazel sends to the cache (REAPI v2): the `Command`
 * (arguments, environment sorted by name, output files sorted, the platform), the input root (a
 * Merkle tree of `Directory` messages over the inputs, every file marked executable as Bazel does)
 * and the `Action` over both (with the platform again), each serialized as deterministic protobuf
 * and hashed with SHA-256. Checked against Bazel 4.2's own Action and Command blobs, which it
 * uploads to the cache next to each result.
 * The key is what the HTTP cache serves at `/ac/<hash>`; `parseActionResult` reads what it holds.
 */

/** A file the action read or wrote, with its content digest. */
export interface DigestedFile {
  readonly path: string;
  readonly sha256: string;
  readonly sizeBytes: number;
}

/** What the execution log records of one spawn, as far as its action key needs it. */
export interface ActionKeyInput {
  readonly arguments: readonly string[];
  readonly environment: readonly { readonly name: string; readonly value: string }[];
  /** Platform properties; null when the log records no platform. */
  readonly platform: readonly { readonly name: string; readonly value: string }[] | null;
  readonly inputs: readonly DigestedFile[];
  /** `listedOutputs`: the files the action declares. */
  readonly outputs: readonly string[];
  readonly timeoutMillis: number;
  /** The digest Bazel logged itself (Bazel 5+), when it did. */
  readonly loggedDigest: string | null;
}

// --- protobuf wire format (only what these messages use) -------------------------------------

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const bytes: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    bytes.push(b);
  } while (v > 0n);
  return Buffer.from(bytes);
}

const tag = (field: number, wire: number): Buffer => varint((field << 3) | wire);
const lengthDelimited = (field: number, body: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(body.length), body]);
const stringField = (field: number, s: string): Buffer => (s === '' ? Buffer.alloc(0) : lengthDelimited(field, Buffer.from(s, 'utf8')));
const intField = (field: number, n: number): Buffer => (n === 0 ? Buffer.alloc(0) : Buffer.concat([tag(field, 0), varint(n)]));
const boolField = (field: number, b: boolean): Buffer => (b ? Buffer.concat([tag(field, 0), varint(1)]) : Buffer.alloc(0));

interface Digest {
  readonly hash: string;
  readonly sizeBytes: number;
}

const digestMessage = (d: Digest): Buffer => Buffer.concat([stringField(1, d.hash), intField(2, d.sizeBytes)]);
const digestOf = (bytes: Buffer): Digest => ({ hash: createHash('sha256').update(bytes).digest('hex'), sizeBytes: bytes.length });

function platformMessage(properties: readonly { name: string; value: string }[]): Buffer {
  const sorted = [...properties].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return Buffer.concat(sorted.map((p) => lengthDelimited(1, Buffer.concat([stringField(1, p.name), stringField(2, p.value)]))));
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** `Command`: arguments (1), environment_variables (2), output_files (3), output_directories (4), platform (5). */
export function commandBytes(input: ActionKeyInput): Buffer {
  const env = [...input.environment].sort((a, b) => byCodeUnits(a.name, b.name));
  return Buffer.concat([
    ...input.arguments.map((a) => lengthDelimited(1, Buffer.from(a, 'utf8'))),
    ...env.map((e) => lengthDelimited(2, Buffer.concat([stringField(1, e.name), stringField(2, e.value)]))),
    ...[...input.outputs].sort(byCodeUnits).map((o) => lengthDelimited(3, Buffer.from(o, 'utf8'))),
    ...(input.platform === null ? [] : [lengthDelimited(5, platformMessage(input.platform))]),
  ]);
}

interface TreeDir {
  readonly files: Map<string, Digest>;
  readonly dirs: Map<string, TreeDir>;
}

/** The input root's digest: `Directory` { files (1): FileNode, directories (2): DirectoryNode }, names sorted. */
export function inputRootDigest(inputs: readonly DigestedFile[]): Digest {
  const root: TreeDir = { files: new Map(), dirs: new Map() };
  for (const input of inputs) {
    const parts = input.path.split('/').filter((p) => p !== '' && p !== '.');
    const name = parts.pop();
    if (name === undefined) throw new Error(`input with an empty path`);
    let dir = root;
    for (const part of parts) {
      let next = dir.dirs.get(part);
      if (next === undefined) dir.dirs.set(part, (next = { files: new Map(), dirs: new Map() }));
      dir = next;
    }
    dir.files.set(name, { hash: input.sha256, sizeBytes: input.sizeBytes });
  }
  const encode = (dir: TreeDir): Digest => {
    const files = [...dir.files].sort(([a], [b]) => byCodeUnits(a, b));
    const dirs = [...dir.dirs].sort(([a], [b]) => byCodeUnits(a, b));
    const bytes = Buffer.concat([
      // FileNode: name (1), digest (2), is_executable (4). Bazel marks every input file executable.
      ...files.map(([name, d]) => lengthDelimited(1, Buffer.concat([stringField(1, name), lengthDelimited(2, digestMessage(d)), boolField(4, true)]))),
      ...dirs.map(([name, sub]) => lengthDelimited(2, Buffer.concat([stringField(1, name), lengthDelimited(2, digestMessage(encode(sub)))]))),
    ]);
    return digestOf(bytes);
  };
  return encode(root);
}

/** `Action`: command_digest (1), input_root_digest (2), timeout (6, a Duration) when set, platform (10) as on the Command. */
export function actionDigest(input: ActionKeyInput): string {
  if (input.loggedDigest !== null) return input.loggedDigest;
  const command = digestOf(commandBytes(input));
  const root = inputRootDigest(input.inputs);
  const timeoutSec = Math.floor(input.timeoutMillis / 1000);
  const timeoutNanos = (input.timeoutMillis % 1000) * 1_000_000;
  const timeout = input.timeoutMillis > 0 ? [lengthDelimited(6, Buffer.concat([intField(1, timeoutSec), intField(2, timeoutNanos)]))] : [];
  const platform = input.platform === null ? [] : [lengthDelimited(10, platformMessage(input.platform))];
  return digestOf(Buffer.concat([lengthDelimited(1, digestMessage(command)), lengthDelimited(2, digestMessage(root)), ...timeout, ...platform])).hash;
}

// --- reading an ActionResult ----------------------------------------------------------------------

interface Field {
  readonly field: number;
  readonly wire: number;
  readonly value: bigint | Buffer;
}

function readVarint(buf: Buffer, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length; i += 1) {
    const b = buf[i]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, i + 1];
    shift += 7n;
    if (shift > 63n) break;
  }
  throw new Error(`malformed varint at byte ${at}`);
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const [key, next] = readVarint(buf, at);
    at = next;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, after] = readVarint(buf, at);
      out.push({ field, wire, value: v });
      at = after;
    } else if (wire === 2) {
      const [len, after] = readVarint(buf, at);
      const end = after + Number(len);
      if (end > buf.length) throw new Error(`field ${field} runs past the end (${end} > ${buf.length} bytes)`);
      out.push({ field, wire, value: buf.subarray(after, end) });
      at = end;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      throw new Error(`unsupported wire type ${wire} of field ${field}`);
    }
  }
  return out;
}

function readDigest(buf: Buffer): Digest {
  let hash = '';
  let sizeBytes = 0;
  for (const f of fields(buf)) {
    if (f.field === 1 && Buffer.isBuffer(f.value)) hash = f.value.toString('utf8');
    if (f.field === 2 && typeof f.value === 'bigint') sizeBytes = Number(f.value);
  }
  return { hash, sizeBytes };
}

/** What an `ActionResult` (the body of `/ac/<hash>`) says an action produced. */
export interface ActionResultView {
  readonly outputFiles: readonly DigestedFile[];
  readonly exitCode: number;
  /** Digests of stdout and stderr, when they were stored as blobs. */
  readonly logDigests: readonly Digest[];
}

/** Parses an `ActionResult`: output_files (2, OutputFile: path 1, digest 2), exit_code (4), stdout_digest (6), stderr_digest (8). Throws on bytes that are not one. */
export function parseActionResult(bytes: Buffer): ActionResultView {
  const outputFiles: DigestedFile[] = [];
  const logDigests: Digest[] = [];
  let exitCode = 0;
  for (const f of fields(bytes)) {
    if (f.field === 2 && Buffer.isBuffer(f.value)) {
      let path = '';
      let digest: Digest = { hash: '', sizeBytes: 0 };
      for (const g of fields(f.value)) {
        if (g.field === 1 && Buffer.isBuffer(g.value)) path = g.value.toString('utf8');
        if (g.field === 2 && Buffer.isBuffer(g.value)) digest = readDigest(g.value);
      }
      outputFiles.push({ path, sha256: digest.hash, sizeBytes: digest.sizeBytes });
    } else if (f.field === 4 && typeof f.value === 'bigint') {
      exitCode = Number(BigInt.asIntN(32, f.value));
    } else if ((f.field === 6 || f.field === 8) && Buffer.isBuffer(f.value)) {
      logDigests.push(readDigest(f.value));
    }
  }
  return { outputFiles, exitCode, logDigests };
}
