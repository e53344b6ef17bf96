import { CommanderError, type Command } from 'commander';
import { exitInvalid } from './exit-codes.js';

let closedHandler: (() => void) | null = null;

/**
 * What to do when stdout or stderr is closed by the reader (`| head`), instead
 * of exiting at once: the peer stops its running step first, so nothing it
 * started outlives it.
 */
export function onOutputClosed(handler: () => void): void {
  closedHandler = handler;
}

/**
 * Runs a commander program the way every taskshard binary does: help and
 * version exit 0, every usage error exits 2, and a closed stdout (`| head`)
 * ends the output quietly instead of crashing with EPIPE.
 */
export async function runProgram(program: Command, argv: readonly string[]): Promise<void> {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
      if (closedHandler === null) process.exit(process.exitCode ?? 0);
      const handler = closedHandler;
      closedHandler = () => undefined; // once
      handler();
    });
  }
  // `-V` is what commander used to print the version with; `-v` is what people type.
  const args = argv.map((a, i) => (i === 2 && a === '-V' ? '-v' : a));
  try {
    await program.parseAsync(args);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : exitInvalid;
      return;
    }
    process.stderr.write(`taskshard: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
