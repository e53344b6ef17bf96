import { afterEach, describe, expect, it, vi } from 'vitest';
import { requireTool, toolPath } from '../helpers/tools.js';

/**
 * The rule the PostgreSQL, nginx, Chromium and Bazel tests rely on: a missing
 * tool skips them locally (with a reason) and fails them in CI, where
 * `.ci/run` sets TASKSHARD_REQUIRE_TOOLS=1.
 */
describe('requireTool', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const missing = ['/nonexistent/taskshard-test/pg_ctl', 'taskshard-no-such-tool-xyz'];

  it('finds a tool by absolute path or on PATH', () => {
    expect(toolPath(['/bin/sh'])).toBe('/bin/sh');
    expect(toolPath([...missing, 'sh'])).toMatch(/\/sh$/);
    expect(requireTool('sh', ['sh'], { TASKSHARD_REQUIRE_TOOLS: '1' })).toMatch(/\/sh$/);
  });

  it('locally: a missing tool returns null (the test is skipped) and says why', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(requireTool('postgresql', missing, {})).toBeNull();
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^skipping: postgresql is not installed \(looked for \/nonexistent\/taskshard-test\/pg_ctl, taskshard-no-such-tool-xyz\)/));
  });

  it('in CI (TASKSHARD_REQUIRE_TOOLS=1): a missing tool fails instead of skipping', () => {
    expect(() => requireTool('postgresql', missing, { TASKSHARD_REQUIRE_TOOLS: '1' })).toThrow(/postgresql is not installed .*TASKSHARD_REQUIRE_TOOLS=1 forbids skipping/);
  });
});
