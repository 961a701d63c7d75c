import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addon: run each test file in its own forked process (a crash stays contained,
    // fd counts are per process).
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
