export * from './job/index.js';
export * from './server/index.js';
