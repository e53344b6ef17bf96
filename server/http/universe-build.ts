import { z } from 'zod';

/**
 * A peer's reported universe build, as stored: an event of kind {@link universeBuiltKind} at the
 * build's end (the authority's clock), its detail a small JSON object with the start and result.
 */
export const universeBuiltKind = 'universe.built';

const detailSchema = z.strictObject({ startedAtMs: z.number().int(), ok: z.boolean(), exitCode: z.number().int().nullable() });
export type UniverseDetail = z.infer<typeof detailSchema>;

export function universeDetail(d: UniverseDetail): string {
  return JSON.stringify({ startedAtMs: d.startedAtMs, ok: d.ok, exitCode: d.exitCode });
}

/** The detail of a stored `universe.built` event; throws naming the event when it is not one. */
export function parseUniverseDetail(detail: string | null, where: string): UniverseDetail {
  let value: unknown;
  try {
    value = JSON.parse(detail ?? '');
  } catch {
    throw new Error(`corrupt database: ${where} has a detail that is not JSON`);
  }
  const parsed = detailSchema.safeParse(value);
  if (!parsed.success) throw new Error(`corrupt database: ${where} has a bad detail (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data;
}
