// Crash-safe training checkpoints: write, rotate, and read back the newest complete one.
export type { TrainingState } from './training-state.js';
export { fingerprintDifferences, fingerprintHash, type JobFingerprint } from './job-fingerprint.js';
export * from './checkpoint-store.js';
export { stepFolderName } from './layout.js';
