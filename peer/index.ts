/**
 * The taskshard peer as a library: `import { runPeer } from 'taskshard/peer'`.
 * Same options as `taskshard peer` (camelCase), with a callback `runner` in
 * place of COMMAND. See docs/peer.md.
 */
export { runPeer, runnerTimeOf, type PeerExitCode, type PeerResult, type PeerRunnerTime, type FailedStep } from './run-peer.js';
export { peerOptionsSchema, type PeerOptions } from './options.js';
export type { StepContext, StepOutcome, StepPhase, StepRunner } from './step-runner.js';
export { createCommandRunner, type CommandRunnerOptions } from './command-runner.js';
export { detectCiEnvironment, type CiEnvironment, type CiProvider } from './ci-environment.js';
