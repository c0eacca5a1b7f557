// The distributed step computed in this process, for either mode: the same shards of the same
// seeded batches, reduced as the mode reduces them (star: the shard sums added in rank order; ring:
// the real ringAllreduce over in-memory transports, so chunks are added in the ring's order), divided
// by the batch size, one Adam step. What the coordinator and its workers must reproduce bit for bit.
import {
  Adam,
  createMemoryTransports,
  gatherImages,
  gatherLabels,
  gradientSum,
  initBackend,
  initSeedCnnParams,
  loadDataset,
  replicaHash,
  ringAllreduce,
  shardBatch,
  TrainingPlan,
  type Compression,
  type Split,
} from '@ddp/core';

export { replicaHash };
export type Mode = 'star' | 'ring';

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

export interface ReferenceOptions {
  mode?: Mode;
  compress?: Compression;
  batchSize?: number;
}

/** Advances `run` by `steps` steps, each split into `members` shards and reduced as `mode` does. */
export async function referenceSteps(run: ReferenceRun, train: Split, seed: number, steps: number, members: number, opts: ReferenceOptions = {}): Promise<void> {
  const plan = new TrainingPlan({ seed, batchSize: opts.batchSize ?? 64, trainCount: train.count });
  for (let k = 0; k < steps; k++, run.step++) {
    const { batch } = plan.at(run.step);
    const grads = shardBatch(batch, members).map((shard) =>
      shard.length === 0 ? new Float32Array(run.params.length) : gradientSum(run.params, gatherImages(train, shard), gatherLabels(train, shard), shard.length).grad,
    );
    let sum: Float32Array;
    if (opts.mode === 'ring') {
      const transports = createMemoryTransports(members);
      sum = (await Promise.all(transports.map((t, r) => ringAllreduce(t, grads[r]!, { compress: opts.compress ?? 'none', tag: 'grad' }))))[0]!;
    } else {
      sum = new Float32Array(run.params.length);
      for (const g of grads) for (let i = 0; i < sum.length; i++) sum[i] += g[i]!;
    }
    run.adam.stepFromSum(run.params, sum, batch.length);
  }
}

export function cloneRun(run: ReferenceRun): ReferenceRun {
  const adam = new Adam(run.params.length, { lr: 1e-3 });
  adam.load(run.adam.state());
  return { params: run.params.slice(), adam, step: run.step };
}

/** Runs the reference through segments of the run: `size` members from step `from` (1-based) on. */
export async function referenceOverSegments(seed: number, train: Split, steps: number, segments: Array<{ from: number; size: number }>, opts: ReferenceOptions = {}): Promise<Float32Array> {
  const run = await referenceStart(seed);
  const sorted = [...segments].sort((a, b) => a.from - b.from);
  for (let i = 0; i < sorted.length; i++) {
    const end = i + 1 < sorted.length ? sorted[i + 1]!.from : steps + 1;
    await referenceSteps(run, train, seed, end - sorted[i]!.from, sorted[i]!.size, opts);
  }
  return run.params;
}
