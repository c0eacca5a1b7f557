import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The wasm kernels load their routines from src/backend/kernels/wat/*.wasm when run from the
    // sources: assemble them from the .wat files before the tests start.
    globalSetup: ['./scripts/assemble-wat.mjs'],
    // Some tests compute on the tfjs cpu backend (seconds per gradient), on 2 cores that may be busy:
    // a timeout is a hang detector here, not a speed check.
    testTimeout: 60_000,
  },
});
