// The ring-mode step computed in this process: the same shards, reduced by the real ringAllreduce
// over in-memory transports (so the chunks are added in the ring's order, not rank order), divided
// by the batch size, one Adam step. What the workers' replicas must reproduce bit for bit.
import { createMemoryTransports, epochPermutation, gatherImages, gatherLabels, globalBatch, gradientSum, ringAllreduce, shardBatch, type Compression, type Split } from '@ddp/core';
import type { ReferenceRun } from './reference-training.js';

/** Advances `run` by `steps` steps (within epoch 0) on a ring of `members` workers. */
export async function ringReferenceSteps(run: ReferenceRun, train: Split, seed: number, steps: number, members: number, compress: Compression = 'none', batchSize = 64): Promise<void> {
  const perm = epochPermutation(seed, 0, train.count);
  for (let k = 0; k < steps; k++, run.step++) {
    const batch = globalBatch(perm, run.step, batchSize);
    const grads = shardBatch(batch, members).map((shard) =>
      shard.length === 0 ? new Float32Array(run.params.length) : gradientSum(run.params, gatherImages(train, shard), gatherLabels(train, shard), shard.length).grad,
    );
    const transports = createMemoryTransports(members);
    const sums = await Promise.all(transports.map((t, r) => ringAllreduce(t, grads[r], { compress, tag: 'grad' })));
    const sum = sums[0];
    for (let i = 0; i < sum.length; i++) sum[i] /= batch.length;
    run.adam.step(run.params, sum);
  }
}

/** replicaHash of a weights.bin's floats, as the coordinator reports it (first 64 bits of sha256). */
export { replicaHash } from '@ddp/core';
