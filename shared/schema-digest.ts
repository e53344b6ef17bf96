import { createHash } from 'node:crypto';
import type { SchemaDef } from './schema-file.js';

/**
 * The canonical form of a schema: id, universe, and steps in schema order with
 * their target and sorted `needs`. Key order and whitespace of the file never
 * change it, and the map and list forms of the same steps give the same form.
 * `estimateSec` is a scheduling hint and deliberately not part of it, so peers
 * whose estimates differ still share a cohort. `requires` (sorted) is part of
 * it only when a step lists a label, so a schema without labels keeps the
 * digest it had before labels existed.
 */
export function canonicalSchemaJson(schema: SchemaDef): string {
  return canonicalText(schema, false);
}

/** The canonical form's text, with each step's `estimateSec` (where it has one) when `withEstimates`. */
function canonicalText(schema: SchemaDef, withEstimates: boolean): string {
  return JSON.stringify({
    id: schema.id,
    universe: schema.universe,
    steps: schema.steps.map((s) => ({
      id: s.id,
      target: s.target,
      needs: [...s.needs].sort(),
      ...(withEstimates && s.estimateSec !== undefined ? { estimateSec: s.estimateSec } : {}),
      ...(s.requires !== undefined && s.requires.length > 0 ? { requires: [...s.requires].sort() } : {}),
    })),
  });
}

const sha256 = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** `sha256:<hex>` of the canonical form. */
export function schemaDigest(schema: SchemaDef): string {
  return sha256(canonicalText(schema, false));
}

/**
 * The digest a digest-first `hello` names its schema by (`schemaDigest`): the canonical form with each
 * step's `estimateSec` where it has one, so it tells apart two schemas that the cohort digest
 * ({@link schemaDigest}) treats as one but that a new cohort would schedule differently. For a schema
 * without estimates it equals {@link schemaDigest}. Peer and authority compute it from the normalized
 * schema (the peer from its file, the authority from the schema a full hello carried).
 */
export function helloSchemaDigest(schema: SchemaDef): string {
  if (!schema.steps.some((s) => s.estimateSec !== undefined)) return schemaDigest(schema);
  return sha256(canonicalText(schema, true));
}
