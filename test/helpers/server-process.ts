import { spawn, type ChildProcess } from 'node:child_process';
import { cliPath, repoRoot } from './cli.js';

/** A real `taskshard server` process on 127.0.0.1 with an ephemeral port. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited(): Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [cliPath, 'server', '--port', '0', '--log-level', 'info', ...args], {
    cwd: repoRoot,
    env: { ...process.env, TASKSHARD_TOKEN: '', TASKSHARD_ADMIN_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exit = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const match = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"taskshard authority listening"/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${out}`));
    });
  });
  return {
    child,
    httpUrl: url,
    wsUrl: `${url.replace(/^http/, 'ws')}/v1/peer`,
    output: () => out,
    exited: () => exit,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
}
