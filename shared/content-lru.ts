/**
 * Values kept by the exact text of what they were computed from, least
 * recently used first out, within a count and a total of characters.
 * The authority's per-content caches of hello schemas (shared/frames.ts,
 * server/http/schema-check-cache.ts) use it, so a fleet's few schemas are
 * checked once, and so does its index of checked schemas by digest
 * (schema-check-cache.ts), which counts the size of the schema a digest stands
 * for instead of the key's. An entry larger than the whole budget is never kept.
 */
export class ContentLru<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly chars: number }>();
  private totalChars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxTotalChars: number,
  ) {}

  get(key: string): V | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  /**
   * Keeps `value` under `key`, counting `chars` against the budget (default: the key's length).
   * A key already held keeps its first value and becomes the most recently used.
   */
  set(key: string, value: V, chars = key.length): void {
    if (chars > this.maxTotalChars) return;
    const held = this.entries.get(key);
    if (held !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, held);
      return;
    }
    this.entries.set(key, { value, chars });
    this.totalChars += chars;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.totalChars <= this.maxTotalChars) break;
      this.entries.delete(oldest);
      this.totalChars -= entry.chars;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
