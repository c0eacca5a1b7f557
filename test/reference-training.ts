// The distributed step computed in this process: the same shards, summed in rank order, divided by
// the batch size, one Adam step. What the coordinator and its workers must reproduce bit for bit.
import { Adam, epochPermutation, gatherImages, gatherLabels, globalBatch, gradientSum, initBackend, initSeedCnnParams, loadDataset, shardBatch, type Split } from '@ddp/core';

export interface ReferenceRun {
  params: Float32Array;
  adam: Adam;
  step: number;
}

export async function referenceStart(seed: number): Promise<ReferenceRun> {
  await initBackend('wasm');
  const params = initSeedCnnParams(seed);
  return { params, adam: new Adam(params.length, { lr: 1e-3 }), step: 0 };
}

export function loadTrain(limitTrain: number): Split {
  return loadDataset({ limitTrain, limitTest: 1 }).train;
}

/** Advances `run` by `steps` steps (within epoch 0), each split into `shards` shards. */
export function referenceSteps(run: ReferenceRun, train: Split, seed: number, steps: number, shards: number, batchSize = 64): void {
  const perm = epochPermutation(seed, 0, train.count);
  for (let k = 0; k < steps; k++, run.step++) {
    const batch = globalBatch(perm, run.step, batchSize);
    const sum = new Float32Array(run.params.length);
    for (const shard of shardBatch(batch, shards)) {
      if (shard.length === 0) continue;
      const g = gradientSum(run.params, gatherImages(train, shard), gatherLabels(train, shard), shard.length).grad;
      for (let i = 0; i < sum.length; i++) sum[i] += g[i];
    }
    for (let i = 0; i < sum.length; i++) sum[i] /= batch.length;
    run.adam.step(run.params, sum);
  }
}

export function cloneRun(run: ReferenceRun): ReferenceRun {
  const adam = new Adam(run.params.length, { lr: 1e-3 });
  adam.load(run.adam.state());
  return { params: run.params.slice(), adam, step: run.step };
}
