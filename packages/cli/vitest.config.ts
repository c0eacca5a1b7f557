import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Tests here start servers and compute on tfjs backends, on 2 cores that may be busy: a timeout is
    // a hang detector, not a speed check.
    testTimeout: 60_000,
  },
});
