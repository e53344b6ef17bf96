#!/usr/bin/env node
import { Command } from 'commander';
import { runProgram } from './cli-runner.js';
import { packageInfo } from './package-info.js';

type Registrar = (program: Command) => void;

/**
 * Each command's module, loaded on demand, in the order `--help` lists them.
 * `taskshard server` loads only the server's modules (then fastify and the
 * store it names), not the peer, the simulator or the API client; a restart
 * pays for what it runs (issue 11: start-up ≤ 2 s).
 */
const commands: readonly (readonly [readonly string[], () => Promise<Registrar>])[] = [
  [['schema'], async () => (await import('./schema-command.js')).registerSchemaCommands],
  [['server'], async () => (await import('./server-command.js')).registerServerCommand],
  [['plan'], async () => (await import('./plan-command.js')).registerPlanCommand],
  [['durations'], async () => (await import('./durations-command.js')).registerDurationsCommand],
  [['cohorts', 'cohort'], async () => (await import('./cohorts-command.js')).registerCohortsCommands],
  [['db'], async () => (await import('./db-command.js')).registerDbCommands],
  [['peer'], async () => (await import('./peer-command.js')).registerPeerCommand],
];

/**
 * `taskshard` — one binary for the authority, the peer and schema tools.
 * When `argv[2]` names a command, only that command is registered (and its
 * modules loaded); otherwise (`--help`, `--version`, a typo) all of them, so
 * help lists every command and commander can suggest the nearest name.
 */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('taskshard')
    .description('Share slow CI build steps across jobs: each shared step is built once, everyone reuses it from the remote cache.')
    .version(packageInfo().version, '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const named = commands.find(([names]) => names.includes(argv[2] ?? ''));
  for (const [, load] of named ? [named] : commands) (await load())(program);
  return program;
}

void buildProgram().then((program) => runProgram(program, process.argv));
