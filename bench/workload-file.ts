import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { checkDurationsValue, locate } from '../server/sim/durations-file.js';
import { unitDraw } from '../server/sim/seeded-random.js';
import type { SimPeerSpec, SimWorkload } from '../server/sim/sim-types.js';
import { simRegistration, stepDurationsMs } from '../server/sim/sim-workload.js';
import { parseJsonText } from '../shared/json-text.js';
import type { SchemaDef } from '../shared/schema-file.js';
import { defaultSchemaIdFor, formatSchemaProblem, validateSchemaText, validateSchemaValue, type SchemaProblem } from '../shared/schema-validate.js';
import { problemsFromZod, type LocatedProblem } from '../shared/zod-issues.js';
import { maxWorkloadPeers, workloadFileSchema, type WorkloadFile } from './workload-format.js';

/** Reads and validates a workload file; every problem is one `file:line:col: path: message [rule]` line. */
export type LoadedWorkload = { readonly ok: true; readonly workload: SimWorkload; readonly description: string } | { readonly ok: false; readonly lines: string[] };

export function loadWorkloadFile(file: string): LoadedWorkload {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, lines: [`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} [read]`] };
  }
  const parsed = parseJsonText(text);
  if (!parsed.ok) return { ok: false, lines: [formatSchemaProblem(file, { path: [], rule: 'json-syntax', message: parsed.message, position: parsed.position })] };
  const { doc } = parsed;
  const fail = (problems: readonly LocatedProblem[]): LoadedWorkload => ({ ok: false, lines: locate(doc, problems).map((p) => formatSchemaProblem(file, p)) });
  const duplicates = doc.duplicateKeys();
  if (duplicates.length > 0) return fail(duplicates.map((d) => ({ path: d.path, rule: 'duplicate-key', message: `key "${d.key}" appears more than once in this object` })));

  const envelope = workloadFileSchema.safeParse(doc.value, { reportInput: true });
  if (!envelope.success) return fail(problemsFromZod(envelope.error));
  const w: WorkloadFile = envelope.data;

  // The schema: inline (located in this file) or a file of its own (located there).
  let schema: SchemaDef;
  if ((w.schema === undefined) === (w.schemaFile === undefined)) {
    return fail([{ path: w.schema === undefined ? [] : ['schemaFile'], rule: 'schema', message: 'give exactly one of "schema" (inline) and "schemaFile" (a path relative to this file)' }]);
  }
  if (w.schemaFile !== undefined) {
    const schemaPath = resolve(dirname(file), w.schemaFile);
    let schemaText: string;
    try {
      schemaText = readFileSync(schemaPath, 'utf8');
    } catch (err) {
      return fail([{ path: ['schemaFile'], rule: 'read', message: `cannot read ${schemaPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
    }
    const result = validateSchemaText(schemaText, { defaultId: defaultSchemaIdFor(schemaPath) });
    if (!result.ok) return { ok: false, lines: result.problems.map((p) => formatSchemaProblem(schemaPath, p)) };
    schema = result.schema;
  } else {
    const result = validateSchemaValue(w.schema, { defaultId: w.name });
    if (!result.ok) return fail(result.problems.map((p: SchemaProblem) => ({ ...p, path: ['schema', ...p.path] })));
    schema = result.schema;
  }

  let overrides = new Map<string, number>();
  if (w.durationsSec !== undefined) {
    const checked = checkDurationsValue(w.durationsSec, schema, ['durationsSec']);
    if (!checked.ok) return fail(checked.problems);
    // A workload is written with its schema: a duration for a step it lacks is a mistake, not history.
    if (checked.unknownSteps.length > 0) return fail(checked.unknownSteps);
    overrides = checked.durationsSec;
  }

  const problems: LocatedProblem[] = [];
  const seen = new Set<string>();
  let total = 0;
  w.groups.forEach((g, i) => {
    if (seen.has(g.name)) problems.push({ path: ['groups', i, 'name'], rule: 'duplicate', message: `group name "${g.name}" is used twice` });
    seen.add(g.name);
    total += g.peers;
    if (g.peerLabels && g.peerLabels.length > g.peers) problems.push({ path: ['groups', i, 'peerLabels'], rule: 'max', message: `lists labels for ${g.peerLabels.length} peers; the group has ${g.peers}` });
  });
  if (total > maxWorkloadPeers) problems.push({ path: ['groups'], rule: 'max', message: `${total} peers in all; at most ${maxWorkloadPeers}` });
  if (problems.length > 0) return fail(problems);

  const seed = w.seed ?? 1;
  const peers: SimPeerSpec[] = [];
  for (const g of w.groups) {
    const registration = simRegistration({
      pipelineName: g.pipeline === 'dependent' ? 'gate' : 'check',
      pipelineType: g.pipeline ?? 'independent',
      patchsets: g.patchsets ?? [`refs/changes/${g.name}`],
      baseSha: g.baseSha ?? null,
      isolated: g.isolated ?? false,
    });
    for (let j = 1; j <= g.peers; j++) {
      const peerId = `${g.name}-${j}`;
      const spreadMs = (g.spreadSec ?? 0) * 1000 * unitDraw(seed, 'arrival', peerId);
      const labels = [...new Set([...(g.labels ?? []), ...(g.peerLabels?.[j - 1] ?? [])])].sort();
      peers.push({ peerId, arrivalMs: Math.round(g.atSec * 1000 + spreadMs), registration: labels.length === 0 ? registration : { ...registration, labels } });
    }
  }
  peers.sort((a, b) => a.arrivalMs - b.arrivalMs);
  return {
    ok: true,
    description: w.description,
    workload: { name: w.name, schema, durationsMs: stepDurationsMs(schema, overrides), jitter: w.jitter ?? 0, seed, peers, seedDurations: w.seedDurations ?? false, universeMs: Math.round((w.universeSec ?? 0) * 1000) },
  };
}
