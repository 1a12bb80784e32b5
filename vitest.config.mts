import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` starts nothing (npm run test:unit, seconds); `integration` runs against the
 * real stack that test/global-setup.ts brings up once per run. Forks, not threads: the Temporal
 * worker's native core (and PostgreSQL clients holding sockets across tests) belong in processes.
 * Two files at a time on this project's 2-core machines; a file's tests run in order.
 */
const shared = { pool: 'forks' as const, testTimeout: 300_000, hookTimeout: 300_000 };

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          ...shared,
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
