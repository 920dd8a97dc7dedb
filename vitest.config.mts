import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native work is heavy and the machines have 2 cores: one file at a time keeps timings sane.
    fileParallelism: false,
    pool: 'forks',
  },
});
