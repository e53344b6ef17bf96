import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

/**
 * The README's code blocks, read the way the README tests run them: a section by its `## ` title,
 * its fenced blocks by language, shell commands one per line (continuations joined, comment lines
 * dropped), and the CI examples' variables and commands.
 */

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The text of the README's `## title` section, up to the next `## `. */
export function readmeSection(title: string): string {
  const start = readme.indexOf(`## ${title}\n`);
  if (start < 0) throw new Error(`README has no section "${title}"`);
  const end = readme.indexOf('\n## ', start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The bodies of the fenced blocks of one language (```sh, ```yaml, ...). */
export function codeBlocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

/** Every fenced block's language, in order (`''` for a bare fence). */
export function blockLanguages(text: string): string[] {
  return [...text.matchAll(/```(\w*)\n[\s\S]*?```/g)].map((m) => m[1]!);
}

/** The commands of shell blocks: one per line, `\` continuations joined, blank and comment lines dropped. */
export function shellCommands(shellBlocks: readonly string[]): string[] {
  return shellBlocks
    .flatMap((b) => b.replace(/\\\n\s*/g, '').split('\n'))
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** A ```sh block that starts with `#!` is a script; its second line names it (`# ci/build.sh {step} {target}`). */
export function isScript(block: string): boolean {
  return block.startsWith('#!');
}

export function scriptPath(block: string): string {
  const named = block.split('\n')[1]?.match(/^# (\S+)/);
  if (!named) throw new Error(`a README script block does not name its file on its second line:\n${block}`);
  return named[1]!;
}

/** The shell blocks of "Running peers in CI", by who runs them. */
export interface CiShellBlocks {
  /** `node peer.mjs ...` and the like: test/e2e/readme-ci.test.ts. */
  readonly peerCommands: string[];
  /** Installing the `npm pack` tarball: test/e2e/npm-pack-install.test.ts. */
  readonly packageInstall: string[];
  /** Scripts by path (ci/build.sh): test/e2e/real-readme-build-script.test.ts runs it with Bazel. */
  readonly scripts: Record<string, string>;
}

export function ciShellBlocks(section: string = readmeSection('Running peers in CI')): CiShellBlocks {
  const shell = codeBlocks(section, 'sh');
  const scripts = Object.fromEntries(shell.filter(isScript).map((b) => [scriptPath(b), b]));
  const commandBlocks = shell.filter((b) => !isScript(b));
  const install = commandBlocks.filter((b) => /^npm pack /m.test(b));
  return {
    peerCommands: shellCommands(commandBlocks.filter((b) => !install.includes(b))),
    packageInstall: shellCommands(install),
    scripts,
  };
}

export interface CiJob {
  readonly env: Record<string, string>;
  readonly commands: string[];
}

/** A YAML example's TASKSHARD_ variables and its `- run:` / `script:` commands. */
export function ciJob(yaml: string): CiJob {
  const env: Record<string, string> = {};
  for (const m of yaml.matchAll(/^\s+(TASKSHARD_[A-Z_]+): (.+)$/gm)) env[m[1]!] = m[2]!.trim();
  const commands = [...yaml.matchAll(/^\s*- (?:run: )?((?:curl|node) .+)$/gm)].map((m) => m[1]!.trim());
  return { env, commands };
}
