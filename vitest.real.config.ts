import { defineConfig } from 'vitest/config';

/**
 * The real-build e2e tests (examples/bazel with Bazel 4.2 and nginx, examples/turborepo with turbo
 * and its cache server): three build jobs each, real CPU work. They run after the rest of the suite
 * (`npm test` runs both) and one file at a time, so each stays within its 3-minute budget on a
 * 2-core machine and the other tests' timing is not starved by three Bazel servers.
 */
export default defineConfig({
  test: {
    include: ['test/e2e/real-*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/leak-check.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
