// vitest setup file (vitest.config.ts): with UVFETCH_TEST_IO_THREADS=N set, every Session the
// tests create without an `ioThreads` option runs on N native I/O threads (the default comes
// from a registered symbol lib/session/options.ts reads). CI runs the integration suite once
// more this way (.ci/run). Child processes the tests spawn are not affected.
const n = process.env.UVFETCH_TEST_IO_THREADS;
if (n !== undefined && n !== '' && n !== '0') {
  const v = Number(n);
  if (!Number.isInteger(v) || v < 1 || v > 64) throw new Error(`UVFETCH_TEST_IO_THREADS must be 1..64, got ${n}`);
  (globalThis as Record<symbol, unknown>)[Symbol.for('uvfetch.test.defaultIoThreads')] = v;
}
