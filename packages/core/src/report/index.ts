export * from './events.js';
export * from './progress-bar.js';
export * from './reporter.js';
export * from './run-error.js';
export * from './run-progress.js';
export * from './timeline.js';
