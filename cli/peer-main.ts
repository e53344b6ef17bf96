import { Command } from 'commander';
import { clientVersion } from '../peer/client-version.js';
import { runProgram } from './cli-runner.js';
import { registerPeerCommand } from './peer-command.js';
import { registerSchemaCommands } from './schema-command.js';

/**
 * The entry of `peer.mjs`, the one-file peer the authority serves at
 * `GET /peer.mjs` (bundled by scripts/build-peer-bundle.mjs): `taskshard peer`
 * and `taskshard schema`, with no server code and no native dependencies.
 */
export function buildPeerProgram(): Command {
  const program = new Command('peer.mjs')
    .description(`The taskshard peer ${clientVersion()}, as served by the authority at /peer.mjs: join the authority from a CI job and build your share of the steps.`)
    .version(clientVersion(), '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerSchemaCommands(program);
  registerPeerCommand(program);
  return program;
}

void runProgram(buildPeerProgram(), process.argv);
