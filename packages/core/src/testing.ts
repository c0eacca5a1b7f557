// Test helpers for the tests of other packages, as `@ddp/core/testing`. They import vitest, so they
// stay out of the main index (which production code loads, where vitest is not installed).
export {
  transportConformance,
  type ConformanceGroup,
  type ConformanceGroupOptions,
  type MakeConformanceGroup,
} from './allreduce/transport-conformance.js';
export { protocolRefusal, randomSplit } from './test-support.js';
