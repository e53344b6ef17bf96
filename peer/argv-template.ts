/**
 * Placeholders in the user's command line. They are replaced inside each argv
 * element, never in a shell string, so a target such as `//a/... && rm -rf /`
 * stays one literal argument unless the user's own COMMAND is a shell.
 */
export interface ArgvValues {
  /** The build target: a step's target, or the schema's universe. */
  readonly target: string;
  /** The step id, or `universe` for the final build. */
  readonly step: string;
}

/** Replaces every `{target}` and `{step}` in every element; anything else is kept verbatim. */
export function substituteArgv(args: readonly string[], values: ArgvValues): string[] {
  return args.map((arg) => arg.replace(/\{(target|step)\}/g, (_, name: 'target' | 'step') => values[name]));
}
