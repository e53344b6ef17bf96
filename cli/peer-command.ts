import { Option, type Command } from 'commander';
import { preflightCommand } from '../peer/command-preflight.js';
import { createCommandRunner } from '../peer/command-runner.js';
import { runPeerCheck } from '../peer/peer-check.js';
import { runPeerWith } from '../peer/run-peer.js';
import { prepareEvidence } from '../peer/verify.js';
import { onOutputClosed } from './cli-runner.js';
import { applyEnvOptions, flagOrEnv, showEnvInHelp } from './env-options.js';
import { exitInvalid } from './exit-codes.js';
import { collect, numberOption } from './option-parsers.js';

interface PeerFlags {
  server?: string[];
  schema?: string;
  cacheId?: string;
  peerId?: string;
  repo?: string;
  baseRef?: string;
  baseSha?: string;
  changeRef?: string;
  patchset?: string[];
  cohortKey?: string;
  label?: string[];
  pipeline?: string;
  pipelineType: 'independent' | 'dependent';
  isolated?: boolean;
  token?: string;
  universe: boolean;
  connectTimeout: number;
  patience: number;
  onSharedFailure?: 'fail' | 'continue';
  strict?: boolean;
  check?: boolean;
  report?: string;
  quiet?: boolean;
  progressInterval: number;
  verify?: string;
  buildTool?: 'bazel' | 'turbo' | 'auto';
}

const requiredFlags = ['--server', '--schema', '--cache-id'] as const;

/** Exit codes after a signal, as a shell reports them: 128 + the signal number. */
const signalExitCodes = { SIGINT: 130, SIGTERM: 143 } as const;

/** `taskshard peer`: the CI side. Flag names are an interface CI scripts depend on; see docs/peer.md. */
export function registerPeerCommand(program: Command): void {
  const command = program
    .command('peer')
    .description('join the authority from a CI job: build the shared steps it assigns, then the universe; fail open when it is unreachable')
    .usage('--server URL --schema FILE --cache-id ID [options] -- COMMAND [ARG...]')
    .option('--server <url>', 'authority URL, e.g. wss://taskshard.internal (required); an active one and its standbys: comma-separated or repeated, tried in order', collect)
    .option('--schema <file>', 'schema file, the same content in every peer of a pipeline (required)')
    .option('--cache-id <id>', 'remote cache identity; peers share only within one cache (required)')
    .option('--peer-id <id>', 'unique id of this peer (default: from the CI job)')
    .option('--repo <url>', 'repository (default: from CI, then git remote.origin.url)')
    .option('--base-ref <ref>', 'branch the change is based on (default: from CI, then the git branch)')
    .option('--base-sha <sha>', 'commit sha of the base (default: from CI, then git HEAD, unless --change-ref or --patchset is given)')
    .option('--change-ref <ref>', 'ref of the change under test (default: from CI)')
    .option('--patchset <ref>', 'a patchset applied on the base, in order (repeatable; the variable takes a space-separated list; default: the change ref)', collect)
    .option('--cohort-key <key>', 'name the group explicitly: peers with the same key, repo, cache id and schema share, whatever their refs')
    .option('--label <label>', 'what kind of machine this is, e.g. gpu or arch:arm64 (repeatable, commas allowed; default: TASKSHARD_LABELS=gpu,arch:arm64); os:, arch: and ci: labels are detected and added; only steps whose requires these include are assigned here', collect)
    .option('--pipeline <name>', 'pipeline name (default: from CI, else "default")')
    .addOption(new Option('--pipeline-type <type>', 'independent: share with identical sources; dependent: share with stacked changes').choices(['independent', 'dependent']).default('independent'))
    .option('--isolated', 'never share: a cohort of one')
    .option('--token <token>', 'peer token (prefer the variable: it does not show in ps)')
    .option('--no-universe', 'do not run the universe build at the end')
    .option('--connect-timeout <sec>', 'fail open when the authority does not answer within this at start', numberOption(0.1, 3600), 10)
    .option('--patience <sec>', 'fail open when a lost authority stays gone this long', numberOption(0, 86_400), 60)
    .addOption(new Option('--on-shared-failure <mode>', 'a shared step failed for good: fail exits 1 at once, continue lets the universe decide (default: fail for independent, continue for dependent)').choices(['fail', 'continue']))
    .option('--strict', 'exit 2 instead of failing open (and print a CI error annotation)')
    .option('--check', 'check the authority (reachable, token accepted, version), the schema and COMMAND, then exit 0 or 2 without joining')
    .option('--report <file>', 'write a JSON summary of the run to this file (cohort, every step, totals, why it failed open)')
    .option('--quiet', 'print only assignments, failures and the final line: no warnings, no waiting lines (so nothing while it waits: on CircleCI, which kills a silent job after 10 min, raise no_output_timeout)')
    .option('--progress-interval <sec>', 'while waiting, print a progress line at least this often (not with --quiet)', numberOption(1, 3600), 60)
    .option('--verify <cmd>', 'after a successful step, check its result is in the remote cache (builtin:bazel, builtin:turbo, or a command line with {step} {target}); failing: reported as not published, leased again')
    .addOption(new Option('--build-tool <tool>', "read the universe build's cache summary from $TASKSHARD_EVIDENCE_FILE and report hits, misses and shared steps that were not hits").choices(['bazel', 'turbo', 'auto']))
    .argument('[command...]', 'command run per step, then for the universe; {target} and {step} are substituted in each ARG')
    .addHelpText(
      'after',
      [
        '',
        'Every option can come from the environment as TASKSHARD_<OPTION> (shown with each); a flag wins over',
        'its variable. Boolean variables take true/false (1/0, yes/no).',
        'Exit codes: 0 every step resolved and the universe built; 1 a step or the universe failed;',
        '            2 usage, schema or COMMAND error (or, with --strict, an unusable authority);',
        '            130/143 interrupted by SIGINT/SIGTERM.',
        'The child gets TASKSHARD_STEP, TASKSHARD_TARGET, TASKSHARD_PHASE (and never TASKSHARD_TOKEN).',
        'Example: TASKSHARD_SERVER=wss://ci-auth TASKSHARD_CACHE_ID=bazel-prod taskshard peer --schema taskshard.json -- bazel build {target}',
        '',
      ].join('\n'),
    )
    .action(async (commandLine: string[], _flags: PeerFlags, cmd: Command) => {
      process.exitCode = await runPeerCommand(commandLine, cmd);
    });
  showEnvInHelp(command);
}

async function runPeerCommand(commandLine: string[], cmd: Command): Promise<number> {
  const problems = applyEnvOptions(cmd, process.env, ['--patchset']);
  const flags = cmd.opts<PeerFlags>();
  const missing = requiredFlags.filter((f) => flags[f === '--cache-id' ? 'cacheId' : (f.slice(2) as 'server' | 'schema')] === undefined);
  if (missing.length > 0) problems.push(`missing required option${missing.length > 1 ? 's' : ''}: ${missing.map((f) => flagOrEnv(cmd, f)).join(', ')}`);
  const [command, ...args] = commandLine;
  if (command === undefined || command === '') problems.push('COMMAND: missing; put it after --, e.g. -- bazel build {target}');
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`taskshard peer: ${p}\n`);
    return exitInvalid;
  }
  const preflight = preflightCommand(command!, process.env.PATH ?? '', process.cwd());
  if (!preflight.ok) {
    process.stderr.write(`taskshard peer: COMMAND: ${preflight.problem}\n`);
    return exitInvalid;
  }
  const options = {
    server: flags.server!,
    schema: flags.schema!,
    cacheId: flags.cacheId!,
    peerId: flags.peerId,
    repo: flags.repo,
    baseRef: flags.baseRef,
    baseSha: flags.baseSha,
    changeRef: flags.changeRef,
    patchsets: flags.patchset ?? [],
    cohortKey: flags.cohortKey,
    labels: flags.label,
    pipeline: flags.pipeline,
    pipelineType: flags.pipelineType,
    isolated: flags.isolated ?? false,
    token: flags.token,
    universe: flags.universe,
    connectTimeoutSec: flags.connectTimeout,
    patienceSec: flags.patience,
    onSharedFailure: flags.onSharedFailure,
    strict: flags.strict ?? false,
    report: flags.report,
    quiet: flags.quiet ?? false,
    progressIntervalSec: flags.progressInterval,
  };
  if (flags.check) return runPeerCheck({ ...options, commandPath: preflight.path });
  let evidence: ReturnType<typeof prepareEvidence>;
  try {
    evidence = prepareEvidence(flags.verify, flags.buildTool !== undefined);
  } catch (err) {
    process.stderr.write(`taskshard peer: --verify: ${(err as Error).message}\n`);
    return exitInvalid;
  }

  // First SIGINT/SIGTERM: stop the step (SIGTERM to its process group, SIGKILL after a grace), say bye.
  // A second one: SIGKILL the step's process group at once. Either way: exit 130/143, nothing left running.
  const stop = new AbortController();
  const hardStop = new AbortController();
  let signalled: keyof typeof signalExitCodes | null = null;
  const onSignal = (signal: keyof typeof signalExitCodes): void => {
    if (signalled === null) {
      signalled = signal;
      stop.abort();
      return;
    }
    hardStop.abort();
    // Bye and the exit follow once the killed step settles; never wait on a hung authority forever.
    setTimeout(() => process.exit(signalExitCodes[signalled!]), 3_000).unref();
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  // `| head` closed our stdout: nobody reads the log any more, so the step ends too.
  let outputClosed = false;
  onOutputClosed(() => {
    outputClosed = true;
    hardStop.abort();
    stop.abort();
  });
  try {
    const result = await runPeerWith(
      {
        ...options,
        runner: evidence.wrap(createCommandRunner({ command: command!, args, env: evidence.env, hardStop: hardStop.signal, ...(evidence.onOutput ? { onOutput: evidence.onOutput } : {}) })),
        buildTool: flags.buildTool,
        evidenceFile: evidence.file,
        ...(evidence.universeOutput ? { universeOutput: evidence.universeOutput } : {}),
        signal: stop.signal,
      },
      'flags',
    );
    if (signalled !== null) return signalExitCodes[signalled];
    if (outputClosed) return 1;
    return result.exitCode;
  } finally {
    evidence.cleanup();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}
