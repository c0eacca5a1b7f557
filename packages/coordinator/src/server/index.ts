export * from './step-round.js';
export * from './coordinator-server.js';
export * from './ws-executor.js';
export * from './ring-step.js';
export * from './ring-executor.js';
