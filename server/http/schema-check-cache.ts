import { ContentLru } from '../../shared/content-lru.js';
import { validateSchemaValue, type SchemaValidation } from '../../shared/schema-validate.js';

type ValidSchema = Extract<SchemaValidation, { ok: true }>;

/**
 * Schema checks of `hello` by the exact schema a peer sent (its JSON text), so
 * a schema that every peer of a fleet sends is validated and digested once,
 * not on every hello. The key is the content itself, never the digest the peer
 * claims: the authority still only trusts a digest it computed. Only valid
 * schemas are kept (a bad one costs its sender the full check each time);
 * least recently used entries go first, within `maxEntries` and `maxTotalChars`.
 * `check` takes the schema as the hello carries it; a `digest` field (the
 * peer's claim) is left out of the check and of the key. A frozen schema
 * object (the frame decoder hands every hello with known content the same
 * frozen object, shared/frames.ts) is found by identity, without copying it
 * without its digest or turning it into text again (about 0.9 ms per hello of
 * 1,000 steps).
 */
export class SchemaCheckCache {
  private readonly entries: ContentLru<ValidSchema>;
  private readonly byObject = new WeakMap<object, ValidSchema>();

  constructor(maxEntries = 256, maxTotalChars = 8 * 1024 * 1024) {
    this.entries = new ContentLru(maxEntries, maxTotalChars);
  }

  check(sent: unknown): SchemaValidation {
    const frozen = typeof sent === 'object' && sent !== null && Object.isFrozen(sent) ? sent : null;
    const known = frozen === null ? undefined : this.byObject.get(frozen);
    if (known !== undefined) return known;
    const value = withoutDigest(sent);
    const key = JSON.stringify(value);
    const hit = this.entries.get(key) ?? validateSchemaValue(value);
    if (hit.ok) {
      this.entries.set(key, hit);
      if (frozen !== null) this.byObject.set(frozen, hit);
    }
    return hit;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The schema a peer sent without the digest it claims (the authority computes its own). */
function withoutDigest(sent: unknown): unknown {
  if (typeof sent !== 'object' || sent === null || Array.isArray(sent) || !('digest' in sent)) return sent;
  const { digest: _claimed, ...value } = sent as Record<string, unknown>;
  return value;
}
