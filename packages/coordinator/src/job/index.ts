export * from './job-config.js';
export * from './step-executor.js';
export * from './local-executor.js';
export * from './run-job.js';
