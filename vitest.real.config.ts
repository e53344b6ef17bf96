import { defineConfig } from 'vitest/config';

/**
 * The real-build e2e tests (examples/bazel with Bazel 4.2 and nginx, examples/turborepo with turbo
 * and its cache server): three build jobs each, real CPU work, so one file at a time, each within
 * its 3-minute budget on a 2-core machine. `npm test` (scripts/run-tests.ts) runs them beside the
 * rest of the suite (vitest.config.ts), whose files mostly wait on processes and sockets;
 * `npm run test:real` runs them alone.
 */
export default defineConfig({
  // Its own results cache: the two runs of `npm test` end at different times, and each rewrites its cache file at the end.
  cacheDir: 'node_modules/.vite-real',
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
