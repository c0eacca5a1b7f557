export * from './select.js';
export * from './kernels/index.js';
