import type { Complete } from '../../shared/protocol.js';

/**
 * JSON of `complete` frames, with the part every member shares encoded once per cohort.
 *
 * A cohort's completion sends each member a `complete` whose `summary.builtByOthers` names who built
 * every step the member did not (with its duration, for targeted peers): in one cohort of 200 × 1,000
 * steps, 200 frames of ~50 KB that differ only in the few steps each member built itself, and
 * `JSON.stringify` of them was ~9% of the authority's busy time. The encoder keeps the JSON of the
 * last large list it encoded (one cohort's, in order) and builds another member's list from slices
 * of it: the member's entries are walked against the kept ones, each compared field by field
 * (`stepId`, `peerId`, `durationMs`), so a run of equal entries is one slice of the kept text and
 * an entry that differs or is not kept is encoded on its own. The result is the text
 * `JSON.stringify` gives for the same message (test/unit/complete-encoder.test.ts holds the two
 * equal); nothing is trusted by identity, so a stale kept list only costs speed.
 */

type BuiltByOther = Complete['summary']['builtByOthers'][number];

/** Below this many entries a list is encoded whole (the walk would cost more than it saves). */
const minShared = 64;

interface KeptList {
  readonly cohortId: string;
  readonly entries: readonly BuiltByOther[];
  /** `[e0,e1,...]`: the entries' JSON, in order. */
  readonly json: string;
  /** Where entry i's JSON starts and ends in `json`. */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  /** Entry index by step id. */
  readonly index: ReadonlyMap<string, number>;
}

let kept: KeptList | null = null;

const sameEntry = (a: BuiltByOther, b: BuiltByOther): boolean => a.stepId === b.stepId && a.peerId === b.peerId && a.durationMs === b.durationMs;

function keep(cohortId: string, entries: readonly BuiltByOther[]): KeptList {
  const parts: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const index = new Map<string, number>();
  let at = 1;
  for (let i = 0; i < entries.length; i++) {
    const text = JSON.stringify(entries[i]);
    parts.push(text);
    starts.push(at);
    ends.push(at + text.length);
    at += text.length + 1;
    index.set(entries[i]!.stepId, i);
  }
  return { cohortId, entries: entries.slice(), json: `[${parts.join(',')}]`, starts, ends, index };
}

/** The JSON of one member's list from the kept one; `alone` counts the entries encoded on their own. */
function fromKept(list: readonly BuiltByOther[], k: KeptList): { json: string; alone: number } {
  const pieces: string[] = [];
  let alone = 0;
  let runStart = -1;
  let j = 0;
  const closeRun = (): void => {
    if (runStart >= 0) pieces.push(k.json.slice(k.starts[runStart], k.ends[j - 1]));
    runStart = -1;
  };
  for (const entry of list) {
    const next = k.entries[j];
    if (next !== undefined && sameEntry(next, entry)) {
      if (runStart < 0) runStart = j;
      j++;
      continue;
    }
    closeRun();
    const at = k.index.get(entry.stepId);
    if (at !== undefined && at >= j && sameEntry(k.entries[at]!, entry)) {
      runStart = at;
      j = at + 1;
    } else {
      pieces.push(JSON.stringify(entry));
      alone++;
    }
  }
  closeRun();
  return { json: `[${pieces.join(',')}]`, alone };
}

/** The key that introduces the list in the frame, with the empty list it is encoded with first. */
const placeholder = '"builtByOthers":[]';

/** `JSON.stringify(message)` for a `complete` frame (with or without `succeeded`), its shared part encoded once. */
export function encodeComplete(message: Complete): string {
  const list = message.summary.builtByOthers;
  if (list.length < minShared) return JSON.stringify(message);
  let listJson: string;
  if (kept === null || kept.cohortId !== message.cohortId) {
    kept = keep(message.cohortId, list);
    listJson = kept.json;
  } else {
    const built = fromKept(list, kept);
    listJson = built.json;
    // Mostly other entries than the kept list's (another shape of completion): keep this one instead.
    if (built.alone * 4 > list.length) kept = keep(message.cohortId, list);
  }
  // The rest of the frame is small; the empty list's key is its first occurrence: only a cohort id
  // (a token) and step ids (safe ids) come before it, and a key inside a string would be escaped.
  const rest = JSON.stringify({ ...message, summary: { ...message.summary, builtByOthers: [] } });
  const at = rest.indexOf(placeholder);
  return `${rest.slice(0, at + placeholder.length - 2)}${listJson}${rest.slice(at + placeholder.length)}`;
}

/** Forgets the kept list (tests). */
export function resetCompleteEncoder(): void {
  kept = null;
}
