import { ContentLru } from '../../shared/content-lru.js';
import { helloSchemaDigest } from '../../shared/schema-digest.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import { validateSchemaValue, type SchemaValidation } from '../../shared/schema-validate.js';

export type ValidSchema = Extract<SchemaValidation, { ok: true }>;

/** A schema that passed the check, with what the digest-first index needs. */
interface Known {
  readonly result: ValidSchema;
  /** `helloSchemaDigest` of the checked schema: what a digest-first hello names it by. */
  readonly helloDigest: string;
  /** Characters of its JSON text (its weight in the digest index). */
  readonly chars: number;
}

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
 *
 * Every schema that passes a check also goes into an index by its hello digest
 * (`helloSchemaDigest`, computed here from the checked schema), for digest-first
 * hellos: {@link known} finds a schema this authority checked recently, within the
 * same bounds (entries, and characters of the schemas' text); a schema used again
 * becomes the most recent. The index holds only schemas the authority checked
 * itself, so a digest-first hello gets exactly what its full hello would have.
 */
export class SchemaCheckCache {
  private readonly entries: ContentLru<Known>;
  private readonly byObject = new WeakMap<object, Known>();
  private readonly byHelloDigest: ContentLru<Known>;

  constructor(maxEntries = 256, maxTotalChars = 8 * 1024 * 1024) {
    this.entries = new ContentLru(maxEntries, maxTotalChars);
    this.byHelloDigest = new ContentLru(maxEntries, maxTotalChars);
  }

  check(sent: unknown): SchemaValidation {
    return this.checkSent(sent).result;
  }

  /** {@link check}, with the hello digest of a valid schema (null when it is invalid). */
  checkSent(sent: unknown): { readonly result: SchemaValidation; readonly helloDigest: string | null } {
    const frozen = typeof sent === 'object' && sent !== null && Object.isFrozen(sent) ? sent : null;
    let known = frozen === null ? undefined : this.byObject.get(frozen);
    if (known === undefined) {
      const value = withoutDigest(sent);
      const key = JSON.stringify(value);
      known = this.entries.get(key);
      if (known === undefined) {
        const result = validateSchemaValue(value);
        if (!result.ok) return { result, helloDigest: null };
        known = { result, helloDigest: helloSchemaDigest(result.schema), chars: key.length };
      }
      this.entries.set(key, known);
      if (frozen !== null) this.byObject.set(frozen, known);
    }
    this.byHelloDigest.set(known.helloDigest, known, known.chars);
    return known;
  }

  /**
   * Puts a schema this authority already holds (a restored cohort's, checked when its first peer
   * joined) into the digest-first index, so peers reconnecting after a restart or a failover name
   * it by digest without being asked for it again. Not into the check cache: a full hello of it is
   * still checked once.
   */
  remember(schema: SchemaDef, digest: string): void {
    const helloDigest = helloSchemaDigest(schema);
    const chars = JSON.stringify(schema).length;
    this.byHelloDigest.set(helloDigest, { result: { ok: true, schema, digest }, helloDigest, chars }, chars);
  }

  /** The schema a digest-first hello names, if this authority checked it recently; it becomes the most recent. */
  known(helloDigest: string): ValidSchema | undefined {
    return this.byHelloDigest.get(helloDigest)?.result;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Schemas a digest-first hello can name. */
  get knownSize(): number {
    return this.byHelloDigest.size;
  }
}

/** The schema a peer sent without the digest it claims (the authority computes its own). */
function withoutDigest(sent: unknown): unknown {
  if (typeof sent !== 'object' || sent === null || Array.isArray(sent) || !('digest' in sent)) return sent;
  const { digest: _claimed, ...value } = sent as Record<string, unknown>;
  return value;
}
