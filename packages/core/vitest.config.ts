import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The wasm kernels load their routines from src/backend/kernels/wat/*.wasm when run from the
    // sources: assemble them from the .wat files before the tests start.
    globalSetup: ['./scripts/assemble-wat.mjs'],
  },
});
