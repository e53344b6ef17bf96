import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cliPath, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'taskshard-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('taskshard schema validate', () => {
  it('passes on every shipped schema (and skips the JSON Schema itself)', () => {
    const result = runCli(['schema', 'validate', 'schemas/example.json', 'schemas/reference-form.json', 'schemas/taskshard.schema.json']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ok schemas/example.json: schema "monorepo", 8 steps, sha256:');
    expect(result.stdout).toContain('ok schemas/reference-form.json: schema "reference-form", 4 steps');
    expect(result.stdout).toContain('skip schemas/taskshard.schema.json: a JSON Schema document');
    expect(result.stderr).toBe('');
  });

  it('exits 2 with one located line per problem and no stack trace', () => {
    const good = file('good.json', JSON.stringify({ universe: '//u', steps: [{ id: 'a', target: '//a' }] }));
    const syntax = file('syntax.json', '{\n  "universe": "//u",\n  "steps": [}\n');
    const unknown = file('unknown.json', JSON.stringify({ universe: '//u', steps: [{ id: 'common', target: '//c' }, { id: 'b', target: '//b', needs: ['comon'] }] }, null, 2));
    const cycle = file('cycle.json', JSON.stringify({ universe: '//u', steps: [{ id: 'a', target: '//a', needs: ['b'] }, { id: 'b', target: '//b', needs: ['a'] }] }));
    const result = runCli(['schema', 'validate', good, syntax, unknown, cycle, join(dir, 'missing.json')]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain(`ok ${good}: schema "good", 1 steps`);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toEqual([
      `${syntax}:3:13: JSON syntax error: value expected [json-syntax]`,
      `${unknown}:12:9: steps[1].needs[0]: unknown step "comon" (did you mean "common"?) [unknown-need]`,
      `${cycle}:1:102: steps[1].needs[0]: cycle: a -> b -> a [cycle]`,
      `${join(dir, 'missing.json')}: cannot read: no such file [read]`,
      '4 of 5 schema files invalid',
    ]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('schema files as people write them: JSONC has the digest of the same JSON; YAML gets a hint; every graph problem next to shape errors', () => {
    const plain = file('plain.json', JSON.stringify({ id: 'mono', universe: '//u/...', steps: [{ id: 'common', target: '//c/...', estimateSec: 600 }, { id: 'planning', target: '//p/...', needs: ['common'] }] }));
    const jsonc = file(
      'commented.json',
      [
        '// the shared steps of our monorepo',
        '{',
        '  "id": "mono", /* the cohort id */',
        '  "universe": "//u/...",',
        '  "steps": [',
        '    { "id": "common", "target": "//c/...", "estimateSec": 600, },',
        '    { "id": "planning", "target": "//p/...", "needs": ["common",], }, // last',
        '  ],',
        '}',
        '',
      ].join('\n'),
    );
    const ok = runCli(['schema', 'validate', plain, jsonc]);
    expect(ok.code, ok.stderr).toBe(0);
    const digests = [...ok.stdout.matchAll(/^ok .*: schema "mono", 2 steps, (sha256:[0-9a-f]+)/gm)].map((m) => m[1]);
    expect(digests).toHaveLength(2);
    expect(digests[0]).toBe(digests[1]);

    const yaml = file('taskshard.yaml', 'universe: //u/...\nsteps:\n  - id: a\n    target: //a/...\n');
    const hinted = runCli(['schema', 'validate', yaml]);
    expect(hinted.code).toBe(2);
    expect(hinted.stderr).toMatch(/schema files are JSON \(comments and trailing commas are allowed\), and this looks like YAML: convert it to JSON \[json-syntax\]\n/);

    const many = file(
      'many.json',
      JSON.stringify({
        id: 'many',
        universe: '//u',
        steps: [
          { id: 'a', target: '//a', needs: ['b'] },
          { id: 'b', target: '//b', needs: ['a'] },
          { id: 'c', target: '//c', needs: ['d'] },
          { id: 'd', target: '//d', needs: ['e', 'zzz'] },
          { id: 'e', target: 5, needs: ['c'] },
        ],
      }),
    );
    const problems = runCli(['schema', 'validate', many]);
    expect(problems.code).toBe(2);
    const rules = problems.stderr.trim().split('\n').slice(0, -1).map((l) => l.match(/\[([a-z-]+)\]$/)?.[1]);
    expect(rules.sort()).toEqual(['cycle', 'cycle', 'type', 'unknown-need']);
    expect(problems.stderr).toMatch(/cycle: a -> b -> a \[cycle\]/);
    expect(problems.stderr).toMatch(/cycle: c -> d -> e -> c \[cycle\]/);
  });

  it('exits 2 on usage errors', () => {
    expect(runCli(['schema', 'validate']).code).toBe(2);
    expect(runCli(['no-such-command']).code).toBe(2);
  });
});

describe('taskshard top level', () => {
  it('prints help and version with exit 0', () => {
    const help = runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: taskshard');
    expect(help.stdout).toContain('schema');
    const version = runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('ends quietly when its output is closed early (`| head`)', async () => {
    const child = spawn(process.execPath, [cliPath, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  });

  it('prints the JSON Schema', () => {
    const result = runCli(['schema', 'json-schema']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).title).toBe('taskshard schema file');
  });
});
