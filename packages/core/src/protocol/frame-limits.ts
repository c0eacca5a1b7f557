/**
 * Frame size limits (the `ws` maxPayload of each side), sized to the model: a frame just big enough
 * for the largest legitimate message, so a peer cannot make the other side buffer more than that.
 * The slack covers the msgpack map keys, scalars and typed-array headers (well under 1 KB).
 */
import { maxEncodedBytes } from '../allreduce/exact-sum/wire.js';
import type { WireConfig } from './wire-config.js';

const SLACK_BYTES = 4096;

/** The largest shard a worker accepts in one work message; the coordinator refuses larger batches. */
export const MAX_SHARD_SAMPLES = 8192;

/**
 * The largest frame a coordinator accepts: one gradient of `paramCount` float32 values (in star mode
 * with reduction 'exact', the exact-sum encoding of the gradient and the loss: at most
 * maxEncodedBytes(paramCount + 1)), or in ring mode a replica's state (weights and Adam's two
 * moments, for a worker that joins later).
 */
export function coordinatorMaxPayload(paramCount: number, config: Pick<WireConfig, 'allreduce' | 'reduction'>): number {
  if (config.reduction === 'exact' && config.allreduce === 'star') return maxEncodedBytes(paramCount + 1) + SLACK_BYTES;
  return (config.allreduce === 'ring' ? 3 : 1) * paramCount * 4 + SLACK_BYTES;
}

/** Samples per train_data message with --serve-data (a few MB per frame for MNIST). */
export const TRAIN_DATA_CHUNK = 4096;

/**
 * The largest frame a worker accepts: weights plus one shard's indices; in ring mode a replica with
 * Adam's moments (3 vectors); with --serve-data a chunk of TRAIN_DATA_CHUNK samples. A worker
 * learns the mode and batch size only once connected, so it allows the largest: shards of up to
 * `maxShard` samples (MAX_SHARD_SAMPLES by default; the coordinator refuses larger batches).
 */
export function workerMaxPayload(paramCount: number, pixelsPerSample: number, maxShard = MAX_SHARD_SAMPLES): number {
  return Math.max(3 * paramCount * 4 + maxShard * 4, TRAIN_DATA_CHUNK * (pixelsPerSample + 1)) + SLACK_BYTES;
}
