import { canRun, labelListSchema, splitLabelList } from '../shared/labels.js';
import type { StepDef } from '../shared/schema-file.js';
import { detectCiEnvironment, type CiProvider, type Env } from './ci-environment.js';

/**
 * This peer's labels (issue 19): what it was given (`--label`, repeatable, or
 * `TASKSHARD_LABELS=gpu,arch:arm64` when no flag is given) plus what it can
 * tell for free: `os:<platform>` (linux, darwin, win32), `arch:<arch>` (x64,
 * arm64) and, in a CI system it recognizes, `ci:<provider>` (github, gitlab,
 * buildkite, circleci, jenkins). The authority grants it only steps whose
 * `requires` these include.
 */

const ciLabel: Readonly<Record<CiProvider, string>> = {
  'github-actions': 'ci:github',
  'gitlab-ci': 'ci:gitlab',
  buildkite: 'ci:buildkite',
  circleci: 'ci:circleci',
  jenkins: 'ci:jenkins',
};

/** Labels detected for free from the platform and the CI environment. */
export function detectedLabels(env: Env, platform: string, arch: string): string[] {
  const ci = detectCiEnvironment(env);
  return [`os:${platform}`, `arch:${arch}`, ...(ci ? [ciLabel[ci.provider]] : [])];
}

export type LabelResolution = { readonly ok: true; readonly labels: string[] } | { readonly ok: false; readonly problems: string[] };

/**
 * Given labels (the flag's values, else the variable's) plus detected ones, sorted and distinct.
 * A bad label is named with where it came from: `--label[1]: label "has space" must use ...`.
 */
export function resolvePeerLabels(given: readonly string[] | undefined, env: Env, platform: string, arch: string): LabelResolution {
  const fromEnv = given === undefined && env.TASKSHARD_LABELS !== undefined && env.TASKSHARD_LABELS.trim() !== '';
  const declared = given !== undefined ? given.flatMap(splitLabelList) : fromEnv ? splitLabelList(env.TASKSHARD_LABELS!) : [];
  const where = fromEnv ? 'TASKSHARD_LABELS' : '--label';
  // Duplicates among what was given are harmless (a label listed twice, or also detected): merged.
  const parsed = labelListSchema.safeParse([...new Set(declared)]);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((i) => `${where}${i.path.length > 0 ? `[${String(i.path[0])}]` : ''}: ${i.message}`) };
  const labels = [...new Set([...parsed.data, ...detectedLabels(env, platform, arch)])].sort();
  const all = labelListSchema.safeParse(labels);
  if (!all.success) return { ok: false, problems: [`${where}: ${all.error.issues[0]?.message ?? 'invalid'} (with the ${labels.length - parsed.data.length} detected labels)`] };
  return { ok: true, labels };
}

/**
 * The steps this peer cannot build: those whose `requires` its labels lack, and those that need
 * one of them (directly or not). When it builds locally (failing open) it skips them; its
 * universe build covers them, as for a step the authority resolved `unshared`.
 */
export function stepsBeyondLabels(steps: readonly StepDef[], labels: ReadonlySet<string>): Set<string> {
  const beyond = new Set(steps.filter((s) => !canRun(s.requires, labels)).map((s) => s.id));
  let grew = beyond.size > 0;
  while (grew) {
    grew = false;
    for (const s of steps) {
      if (!beyond.has(s.id) && s.needs.some((n) => beyond.has(n))) {
        beyond.add(s.id);
        grew = true;
      }
    }
  }
  return beyond;
}
