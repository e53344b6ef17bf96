import { Option, type Command } from 'commander';
import { createCommandRunner } from '../peer/command-runner.js';
import { runPeerWith } from '../peer/run-peer.js';
import { prepareEvidence } from '../peer/verify.js';
import { collect, numberOption } from './option-parsers.js';
import { exitInvalid } from './schema-command.js';

interface PeerFlags {
  server: string;
  schema: string;
  cacheId: string;
  peerId?: string;
  repo?: string;
  baseRef?: string;
  baseSha?: string;
  changeRef?: string;
  patchset?: string[];
  pipeline?: string;
  pipelineType: 'independent' | 'dependent';
  isolated?: boolean;
  token?: string;
  universe: boolean;
  connectTimeout: number;
  patience: number;
  onSharedFailure?: 'fail' | 'continue';
  strict?: boolean;
  verify?: string;
  buildTool?: 'bazel' | 'turbo' | 'auto';
}

/** `taskshard peer`: the CI side. Flag names are an interface CI scripts depend on; see docs/peer.md. */
export function registerPeerCommand(program: Command): void {
  program
    .command('peer')
    .description('join the authority from a CI job: build the shared steps it assigns, then the universe; fail open when it is unreachable')
    .usage('--server URL --schema FILE --cache-id ID [options] -- COMMAND [ARG...]')
    .requiredOption('--server <url>', 'authority URL, e.g. ws://taskshard.internal:8080')
    .requiredOption('--schema <file>', 'schema file (the same file in every peer of a pipeline)')
    .requiredOption('--cache-id <id>', 'remote cache identity; peers share only within one cache')
    .option('--peer-id <id>', 'unique id of this peer (default: from the CI job)')
    .option('--repo <url>', 'repository (default: from CI, then git remote.origin.url)')
    .option('--base-ref <ref>', 'branch the change is based on (default: from CI, then the git branch)')
    .option('--base-sha <sha>', 'commit sha of the base (default: from CI, then git HEAD, unless any source flag is given)')
    .option('--change-ref <ref>', 'ref of the change under test (default: from CI)')
    .option('--patchset <ref>', 'a patchset applied on the base, in order (repeatable; default: the change ref)', collect)
    .option('--pipeline <name>', 'pipeline name (default: from CI, else "default")')
    .addOption(new Option('--pipeline-type <type>', 'independent: share with identical sources; dependent: share with stacked changes').choices(['independent', 'dependent']).default('independent'))
    .option('--isolated', 'never share: a cohort of one')
    .option('--token <token>', 'peer token (default: env TASKSHARD_TOKEN)')
    .option('--no-universe', 'do not run the universe build at the end')
    .option('--connect-timeout <sec>', 'fail open when the authority does not answer within this at start', numberOption(0.1, 3600), 10)
    .option('--patience <sec>', 'fail open when a lost authority stays gone this long', numberOption(0, 86_400), 60)
    .addOption(new Option('--on-shared-failure <mode>', 'a shared step failed for good: fail exits 1 at once, continue lets the universe decide (default: fail for independent, continue for dependent)').choices(['fail', 'continue']))
    .option('--strict', 'exit 2 instead of failing open')
    .option('--verify <cmd>', 'after a successful step, check its result is in the remote cache (builtin:bazel, builtin:turbo, or a command line with {step} {target}); failing: reported as not published, leased again')
    .addOption(new Option('--build-tool <tool>', "read the universe build's cache summary from $TASKSHARD_EVIDENCE_FILE and report hits, misses and shared steps that were not hits").choices(['bazel', 'turbo', 'auto']))
    .argument('<command...>', 'command run per step, then for the universe; {target} and {step} are substituted in each ARG')
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 every step resolved and the universe built; 1 a step or the universe failed;',
        '            2 usage or schema error (or, with --strict, an unusable authority).',
        'Environment: TASKSHARD_TOKEN (peer token); the child gets TASKSHARD_STEP, TASKSHARD_TARGET, TASKSHARD_PHASE.',
        'Example: taskshard peer --server ws://ci-auth:8080 --schema taskshard.json --cache-id bazel-prod -- bazel build {target}',
        '',
      ].join('\n'),
    )
    .action(async (commandLine: string[], flags: PeerFlags) => {
      const [command, ...args] = commandLine;
      if (command === undefined || command === '') {
        process.stderr.write('taskshard peer: COMMAND: missing; put it after --\n');
        process.exitCode = exitInvalid;
        return;
      }
      let evidence: ReturnType<typeof prepareEvidence>;
      try {
        evidence = prepareEvidence(flags.verify, flags.buildTool !== undefined);
      } catch (err) {
        process.stderr.write(`taskshard peer: --verify: ${(err as Error).message}\n`);
        process.exitCode = exitInvalid;
        return;
      }
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await runPeerWith(
          {
            server: flags.server,
            schema: flags.schema,
            cacheId: flags.cacheId,
            peerId: flags.peerId,
            repo: flags.repo,
            baseRef: flags.baseRef,
            baseSha: flags.baseSha,
            changeRef: flags.changeRef,
            patchsets: flags.patchset ?? [],
            pipeline: flags.pipeline,
            pipelineType: flags.pipelineType,
            isolated: flags.isolated ?? false,
            token: flags.token,
            universe: flags.universe,
            connectTimeoutSec: flags.connectTimeout,
            patienceSec: flags.patience,
            onSharedFailure: flags.onSharedFailure,
            strict: flags.strict ?? false,
            runner: evidence.wrap(createCommandRunner({ command, args, env: evidence.env })),
            buildTool: flags.buildTool,
            evidenceFile: evidence.file,
            signal: stop.signal,
          },
          'flags',
        );
        process.exitCode = result.exitCode;
      } finally {
        evidence.cleanup();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
