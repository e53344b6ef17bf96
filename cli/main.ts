#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerCohortsCommands } from './cohorts-command.js';
import { registerDurationsCommand } from './durations-command.js';
import { packageInfo } from './package-info.js';
import { registerPeerCommand } from './peer-command.js';
import { registerPlanCommand } from './plan-command.js';
import { exitInvalid, registerSchemaCommands } from './schema-command.js';
import { registerServerCommand } from './server-command.js';

/** `taskshard` — one binary for the authority, the peer and schema tools. */
export function buildProgram(): Command {
  const program = new Command('taskshard')
    .description('Share slow CI build steps across jobs: each shared step is built once, everyone reuses it from the remote cache.')
    .version(packageInfo().version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerSchemaCommands(program);
  registerServerCommand(program);
  registerPlanCommand(program);
  registerDurationsCommand(program);
  registerCohortsCommands(program);
  registerPeerCommand(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every usage error exits 2.
      process.exitCode = err.exitCode === 0 ? 0 : exitInvalid;
      return;
    }
    process.stderr.write(`taskshard: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

// `taskshard ... | head` closes our stdout early: that ends the output, it is not a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

void main(process.argv);
