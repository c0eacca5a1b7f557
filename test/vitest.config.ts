import { defineConfig } from 'vitest/config';

// End-to-end tests start real processes: one file at a time on a 2-core machine, generous timeouts.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});
