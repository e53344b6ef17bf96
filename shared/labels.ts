import { z } from 'zod';
import { safeIdPattern } from './ids.js';
import { limits } from './limits.js';

/**
 * Labels: what kind of machine a peer is (`gpu`, `arch:arm64`, `os:linux`,
 * `ci:github`), and what a step `requires`. A label is a safe id (letters,
 * digits and `_ . : @ + -`, no `..`), so `key:value` labels need no quoting.
 * Matching is exact and case-sensitive: a peer can run a step iff its labels
 * include every label the step requires.
 */

const labelRule = 'letters, digits and _ . : @ + - only, starting with a letter, digit or _, and no ".." (e.g. gpu or arch:arm64)';

/** One label; a bad one is named in the message. */
export const labelSchema = z
  .string()
  .min(1, 'a label must not be empty')
  .max(limits.maxLabelLength, { error: (issue) => `label ${JSON.stringify(issue.input)} is longer than ${limits.maxLabelLength} characters` })
  .regex(safeIdPattern, { error: (issue) => `label ${JSON.stringify(issue.input)} must use ${labelRule}` });

/** A list of distinct labels (a step's `requires`, a peer's labels). */
export const labelListSchema = z
  .array(labelSchema)
  .max(limits.maxLabels, `must list at most ${limits.maxLabels} labels`)
  .superRefine((labels, ctx) => {
    const seen = new Set<string>();
    labels.forEach((label, i) => {
      if (seen.has(label)) ctx.addIssue({ code: 'custom', path: [i], message: `label "${label}" is listed twice` });
      seen.add(label);
    });
  });

/** The labels of `requires` that `labels` lacks, in `requires` order (empty: it can run the step). */
export function missingLabels(requires: readonly string[] | undefined, labels: ReadonlySet<string>): string[] {
  if (requires === undefined) return [];
  return requires.filter((label) => !labels.has(label));
}

/** Whether a peer with `labels` can run a step that requires `requires`. */
export function canRun(requires: readonly string[] | undefined, labels: ReadonlySet<string>): boolean {
  if (requires === undefined) return true;
  for (const label of requires) if (!labels.has(label)) return false;
  return true;
}

/** Splits `gpu,arch:arm64` (commas and/or whitespace) into labels, empty parts dropped. */
export function splitLabelList(text: string): string[] {
  return text.split(/[\s,]+/).filter((part) => part !== '');
}
