import { limits } from './limits.js';

/**
 * A structural scan of a JSON text frame *before* `JSON.parse` and zod: it
 * counts, per object, its keys; per array, its items; the nesting depth; the
 * values in all; and the length of every string token. `JSON.parse` of one
 * object with 300k keys alone holds the event loop for more than half a
 * second, and zod then reports every key; the scan is a single pass with
 * `indexOf` over strings (a few ms for 4 MiB) and stops at the first cap
 * passed. It does not validate JSON: `JSON.parse` still does that, on input
 * the scan has bounded.
 */
export interface FrameShapeCaps {
  /** Containers nested in each other (the frame object is depth 1). */
  readonly maxDepth: number;
  readonly maxKeysPerObject: number;
  readonly maxItemsPerArray: number;
  /** Keys plus array items in the whole frame. */
  readonly maxValues: number;
  /** Length of one string token as written, quotes and escapes included (`\u001b` is 6). */
  readonly maxStringChars: number;
}

/** An escaped character is written with at most 6 characters (`\uXXXX`). */
const escaped = (chars: number): number => chars * 6 + 2;

/**
 * Caps for protocol-v1 frames, from the protocol's own limits: the hello is
 * the largest (20 fields defined, most optional, and more are added over time:
 * the cap leaves room, and a test keeps it above every message's field count;
 * a schema of `maxSteps` steps of 4 fields and up to `maxNeedsPerStep` needs
 * each), the log tail the longest string.
 */
export const v1FrameShape: FrameShapeCaps = Object.freeze({
  maxDepth: 6,
  maxKeysPerObject: 32,
  maxItemsPerArray: limits.maxSteps,
  maxValues: limits.maxSteps * (4 + limits.maxNeedsPerStep) + limits.maxPatchsets + 64,
  maxStringChars: escaped(Math.max(limits.maxLogTailChars, limits.maxMessageLength, limits.maxRepoLength, limits.maxTargetLength)),
});

/**
 * Caps for Task Director frames: an INIT names at most `maxRepos` repositories
 * (the widest object) and `maxPatchsets` patchsets in all.
 */
export function taskDirectorFrameShape(maxRepos: number): FrameShapeCaps {
  return Object.freeze({
    maxDepth: 4,
    maxKeysPerObject: Math.max(8, maxRepos),
    maxItemsPerArray: limits.maxPatchsets,
    maxValues: maxRepos * 4 + limits.maxPatchsets + 16,
    maxStringChars: escaped(Math.max(limits.maxRepoLength, limits.maxRefLength, limits.maxNameLength)),
  });
}

interface Container {
  readonly array: boolean;
  /** Keys seen (object) or items seen (array). */
  count: number;
  /** The last key of an object, for messages (cut short). */
  key: string | null;
  /** Array only: an item has started and no `,` has closed it yet. */
  inItem: boolean;
}

const cut = (s: string, n = 40): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/** The JSON path of the innermost container, e.g. `schema.steps[3].needs`. */
function where(stack: readonly Container[]): string {
  let out = '';
  for (let i = 1; i < stack.length; i++) {
    const parent = stack[i - 1]!;
    if (parent.array) out += `[${parent.count - 1}]`;
    else out += out === '' ? (parent.key ?? '?') : `.${parent.key ?? '?'}`;
  }
  return out === '' ? '(root)' : out;
}

/** The first cap the frame passes, as a message naming the place, or null. */
export function frameShapeProblem(text: string, caps: FrameShapeCaps): string | null {
  const stack: Container[] = [];
  let values = 0;
  let keyStart = -1;
  let keyEnd = -1;

  /** A value starts here: in an array, that is a new item. */
  const startValue = (): string | null => {
    const top = stack[stack.length - 1];
    if (top === undefined || !top.array || top.inItem) return null;
    top.inItem = true;
    if (++top.count > caps.maxItemsPerArray) return `${where(stack)}: more than ${caps.maxItemsPerArray} items`;
    if (++values > caps.maxValues) return `more than ${caps.maxValues} values in one frame`;
    return null;
  };

  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let problem: string | null = null;
    if (c === 0x22) {
      // A string token: its closing quote is the next one not escaped by an odd run of backslashes.
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end === -1) return null; // unterminated: JSON.parse reports it
        let backslashes = 0;
        for (let j = end - 1; text.charCodeAt(j) === 0x5c; j--) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      if (end - i + 1 > caps.maxStringChars) return `${where(stack)}: a string of ${end - i + 1} characters; at most ${caps.maxStringChars} are allowed`;
      problem = startValue();
      keyStart = i;
      keyEnd = end;
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      problem = startValue();
      stack.push({ array: c === 0x5b, count: 0, key: null, inItem: false });
      if (stack.length > caps.maxDepth) return `${where(stack.slice(0, -1))}: nested more than ${caps.maxDepth} levels deep`;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
    } else if (c === 0x3a) {
      const top = stack[stack.length - 1];
      if (top !== undefined && !top.array) {
        top.key = keyStart >= 0 ? cut(text.slice(keyStart + 1, keyEnd)) : null;
        if (++top.count > caps.maxKeysPerObject) return `${where(stack)}: more than ${caps.maxKeysPerObject} fields`;
        if (++values > caps.maxValues) return `more than ${caps.maxValues} values in one frame`;
      }
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.array) top.inItem = false;
    } else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      problem = startValue(); // a number, true, false or null
    }
    if (problem !== null) return problem;
  }
  return null;
}
