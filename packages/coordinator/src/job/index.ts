export * from './job-config.js';
export * from './trainer.js';
export * from './local-trainer.js';
export * from './run-job.js';
export * from './job-identity.js';
