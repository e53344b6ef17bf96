/**
 * Stateless, seeded randomness for the simulator: a draw depends only on the
 * seed and the names it is drawn for (never on how many draws came before), so
 * every policy simulated in one run sees the same durations and arrivals.
 */

/** FNV-1a over the UTF-16 code units of `text`, as an unsigned 32-bit integer. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** One step of mulberry32: a well-mixed 32-bit output for a 32-bit input. */
function mix32(x: number): number {
  let t = (x + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/** A number in [0, 1) determined by `seed` and `parts` alone. */
export function unitDraw(seed: number, ...parts: readonly (string | number)[]): number {
  return mix32(fnv1a(`${seed}\u0000${parts.join('\u0000')}`)) / 4294967296;
}
