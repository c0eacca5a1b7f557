// The public surface of @ddp/core: one re-export per area; each area keeps its own index.
export * from './backend/index.js';
export * from './data/index.js';
export * from './model/index.js';
export * from './optim/index.js';
export * from './allreduce/index.js';
export * from './protocol/index.js';
export * from './report/index.js';
export * from './bench/index.js';
export * from './checkpoint/index.js';
export * from './version.js';
export * from './tls/index.js';
