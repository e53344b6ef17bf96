import { defineConfig } from 'vitest/config';

/**
 * `npm run test:soak`: the long versions of the fault suite — the same test
 * code as `npm test`, at full size (TASKSHARD_SOAK=1): 20 peers × 200 steps ×
 * 100 random kills, 20 authority kills, 100,000 property runs, 1,000,000 fuzz frames.
 */
export default defineConfig({
  test: {
    include: ['test/e2e/faults-processes.test.ts', 'test/integration/faults.test.ts', 'test/unit/core-property.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/leak-check.ts'],
    env: { TASKSHARD_SOAK: '1' },
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
