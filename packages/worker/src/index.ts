export * from './connect.js';
export * from './shard-gradient.js';
export * from './worker-session.js';
export * from './run-worker.js';
export * from './ring/index.js';
export * from './peer/index.js';
