import type { SchemaDef, StepDef } from '../../shared/schema-file.js';
import { schemaDigest } from '../../shared/schema-digest.js';
import type { WireSchema } from '../../shared/protocol.js';

/** A schema of `count` independent steps s1..sN with targets //s1/... */
export function flatSchema(count: number, id = 'flat'): SchemaDef {
  const steps: StepDef[] = Array.from({ length: count }, (_, i) => ({ id: `s${i + 1}`, target: `//s${i + 1}/...`, needs: [] }));
  return { id, universe: '//...', steps };
}

/** A schema from a compact description: `{ a: [], b: ['a'] }` (needs per step, schema order kept). */
export function dagSchema(needs: Record<string, string[]>, estimates: Record<string, number> = {}, id = 'dag'): SchemaDef {
  const steps: StepDef[] = Object.entries(needs).map(([stepId, n]) => {
    const est = estimates[stepId];
    return est === undefined ? { id: stepId, target: `//${stepId}/...`, needs: n } : { id: stepId, target: `//${stepId}/...`, needs: n, estimateSec: est };
  });
  return { id, universe: '//...', steps };
}

/** The wire form of a schema, as a peer sends it in hello. */
export function wireSchema(schema: SchemaDef): WireSchema {
  return {
    id: schema.id,
    digest: schemaDigest(schema),
    universe: schema.universe,
    steps: schema.steps.map((s) => ({ id: s.id, target: s.target, needs: [...s.needs], ...(s.estimateSec === undefined ? {} : { estimateSec: s.estimateSec }) })),
  };
}
