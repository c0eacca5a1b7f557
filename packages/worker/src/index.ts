export * from './connect.js';
export * from './member.js';
export * from './session/worker-session.js';
export * from './star/star-member.js';
export * from './star/shard-gradient.js';
export * from './run-worker.js';
export * from './ring/index.js';
export * from './peer/index.js';
