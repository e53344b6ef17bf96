import { Help, type Command, type Option } from 'commander';

/**
 * Every flag of `taskshard peer` and `taskshard server` can come from the
 * environment as `TASKSHARD_<FLAG>` (`--cache-id` -> `TASKSHARD_CACHE_ID`,
 * `--no-universe` -> `TASKSHARD_NO_UNIVERSE`). A flag on the command line
 * always wins; an empty variable counts as unset. Values go through the
 * flag's own parser, so `TASKSHARD_PORT=x` fails like `--port x` does, and the
 * problem names the variable.
 */

export type EnvSource = Readonly<Record<string, string | undefined>>;

/** `--cache-id` -> `TASKSHARD_CACHE_ID`. */
export function envVarOf(option: Option): string | null {
  if (!option.long || option.long === '--help' || option.long === '--version') return null;
  return `TASKSHARD_${option.long.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

const truthy = new Set(['1', 'true', 'yes', 'on']);
const falsy = new Set(['0', 'false', 'no', 'off']);

/**
 * Fills every option of `command` not given on the command line from its
 * variable; returns one problem line per bad value (all of them).
 * `repeatable` flags take a whitespace-separated list.
 */
export function applyEnvOptions(command: Command, env: EnvSource, repeatable: readonly string[] = []): string[] {
  const problems: string[] = [];
  for (const option of command.options) {
    const name = envVarOf(option);
    if (name === null) continue;
    const key = option.attributeName();
    if (command.getOptionValueSource(key) === 'cli') continue;
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') continue;
    try {
      let value: unknown;
      if (option.required || option.optional) {
        const parse = option.parseArg as ((value: string, previous: unknown) => unknown) | undefined;
        if (repeatable.includes(option.long!)) {
          value = raw.split(/\s+/).reduce<unknown>((previous, one) => (parse ? parse(one, previous) : one), undefined);
        } else {
          value = parse ? parse(raw, undefined) : raw;
        }
      } else {
        const lower = raw.toLowerCase();
        if (!truthy.has(lower) && !falsy.has(lower)) throw new Error(`expected true or false (1/0, yes/no), got "${raw}"`);
        const on = truthy.has(lower);
        value = option.negate ? !on : on;
      }
      command.setOptionValueWithSource(key, value, 'env');
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** `--server (or TASKSHARD_SERVER)`, for messages about a missing option. */
export function flagOrEnv(command: Command, long: string): string {
  const option = command.options.find((o) => o.long === long);
  const name = option ? envVarOf(option) : null;
  return name === null ? long : `${long} (or ${name})`;
}

/** Help lists each flag's variable after its default: `(default: 8080, env: TASKSHARD_PORT)`. */
export function showEnvInHelp(command: Command): Command {
  const base = new Help();
  return command.configureHelp({
    optionDescription(option: Option): string {
      const text = base.optionDescription(option);
      const name = envVarOf(option);
      if (name === null) return text;
      return /\)$/.test(text) && /\((choices|default): /.test(text) ? `${text.slice(0, -1)}, env: ${name})` : `${text} (env: ${name})`;
    },
  });
}
