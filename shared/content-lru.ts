/**
 * Values kept by the exact text of what they were computed from, least
 * recently used first out, within a count and a total of key characters.
 * The authority's per-content caches of hello schemas (shared/frames.ts,
 * server/http/schema-check-cache.ts) use it, so a fleet's few schemas are
 * checked once. A key longer than the whole budget is never kept.
 */
export class ContentLru<V> {
  private readonly entries = new Map<string, V>();
  private totalChars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxTotalChars: number,
  ) {}

  get(key: string): V | undefined {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** Keeps `value` under `key` (a key already held keeps its first value). */
  set(key: string, value: V): void {
    if (key.length > this.maxTotalChars || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.totalChars += key.length;
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.totalChars <= this.maxTotalChars) break;
      this.entries.delete(oldest);
      this.totalChars -= oldest.length;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
