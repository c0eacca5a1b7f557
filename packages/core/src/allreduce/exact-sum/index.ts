// Exact, order-independent summation of float32 vectors (see accumulator.ts), and its wire format.
export { ExactAccumulator } from './accumulator.js';
export { ExactSumFormatError } from './format-error.js';
export { encodedRange, maxEncodedBytes, type ExactSumLayout } from './wire.js';
