import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // tools/ imports the library by its package name; under test that is the sources.
    alias: [
      { find: /^uvfetch$/, replacement: fileURLToPath(new URL('./lib/index.ts', import.meta.url)) },
      { find: /^uvfetch\/fleet$/, replacement: fileURLToPath(new URL('./lib/fleet/index.ts', import.meta.url)) },
      { find: /^uvfetch\/otel$/, replacement: fileURLToPath(new URL('./lib/otel/index.ts', import.meta.url)) },
      { find: /^uvfetch\/testing$/, replacement: fileURLToPath(new URL('./lib/testing/index.ts', import.meta.url)) },
    ],
  },
  test: {
    // Native addon: run each test file in its own forked process (a crash stays contained,
    // fd counts are per process).
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // UVFETCH_TEST_IO_THREADS=N: sessions default to N I/O threads (the suite's second run in CI).
    setupFiles: ['test/helpers/io-threads-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
