// Crash-safe training checkpoints, the store's public face: DIR/step-NNNNNNNNN/ folders holding a
// tfjs layers model (model.json + weights.bin), Adam's moments (optimizer.bin), the run's position
// (state.json) and, written last, manifest.json with every file's size and sha256.
export type { CheckpointMeta } from './checkpoint-meta.js';
export { CheckpointError, CheckpointWriteError } from './checkpoint-error.js';
export { writeCheckpoint, DEFAULT_CHECKPOINT_KEEP, type CheckpointWritten } from './write-checkpoint.js';
export { readCheckpoint, readLatestCheckpoint, type LoadedCheckpoint } from './read-checkpoint.js';
export { CheckpointWriter, type CheckpointWriterOptions } from './checkpoint-writer.js';
