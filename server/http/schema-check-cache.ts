import { validateSchemaValue, type SchemaValidation } from '../../shared/schema-validate.js';

/**
 * Schema checks of `hello` by the exact schema a peer sent (its JSON text), so
 * a schema that every peer of a fleet sends is validated and digested once,
 * not on every hello. The key is the content itself, never the digest the peer
 * claims: the authority still only trusts a digest it computed. Only valid
 * schemas are kept (a bad one costs its sender the full check each time);
 * least recently used entries go first, within `maxEntries` and `maxTotalChars`.
 */
export class SchemaCheckCache {
  private readonly entries = new Map<string, Extract<SchemaValidation, { ok: true }>>();
  private totalChars = 0;

  constructor(
    private readonly maxEntries = 256,
    private readonly maxTotalChars = 8 * 1024 * 1024,
  ) {}

  check(value: unknown): SchemaValidation {
    const key = JSON.stringify(value);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const result = validateSchemaValue(value);
    if (result.ok && key.length <= this.maxTotalChars) {
      this.entries.set(key, result);
      this.totalChars += key.length;
      for (const [oldest] of this.entries) {
        if (this.entries.size <= this.maxEntries && this.totalChars <= this.maxTotalChars) break;
        this.entries.delete(oldest);
        this.totalChars -= oldest.length;
      }
    }
    return result;
  }

  get size(): number {
    return this.entries.size;
  }
}
