#!/usr/bin/env node
import { Command } from 'commander';
import { runProgram } from './cli-runner.js';
import { registerCohortsCommands } from './cohorts-command.js';
import { registerDbCommands } from './db-command.js';
import { registerDurationsCommand } from './durations-command.js';
import { packageInfo } from './package-info.js';
import { registerPeerCommand } from './peer-command.js';
import { registerPlanCommand } from './plan-command.js';
import { registerSchemaCommands } from './schema-command.js';
import { registerServerCommand } from './server-command.js';

/**
 * `taskshard` — one binary for the authority, the peer and schema tools.
 * The server's dependencies (fastify, better-sqlite3) load only when
 * `taskshard server` runs; the peer never needs them.
 */
export function buildProgram(): Command {
  const program = new Command('taskshard')
    .description('Share slow CI build steps across jobs: each shared step is built once, everyone reuses it from the remote cache.')
    .version(packageInfo().version, '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerSchemaCommands(program);
  registerServerCommand(program);
  registerPlanCommand(program);
  registerDurationsCommand(program);
  registerCohortsCommands(program);
  registerDbCommands(program);
  registerPeerCommand(program);
  return program;
}

void runProgram(buildProgram(), process.argv);
