import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The real-build tests (Bazel, turbo) run one at a time in their own run (vitest.real.config.ts), beside this one in `npm test`.
    exclude: ['test/soak/**', 'test/e2e/real-*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/leak-check.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at a time (vitest's default here is cores - 1 = 1): most files wait on processes and sockets, not CPU.
    maxWorkers: 2,
  },
});
