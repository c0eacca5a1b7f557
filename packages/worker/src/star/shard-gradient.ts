// One work order's arithmetic: the shard's images and labels, then the gradient SUM over the shard
// at the given weights.
import { gatherShard, gradientSum, gradientSumExact, SEED_CNN_PARAM_COUNT, type Reduction, type Split } from '@ddp/core';

export interface ShardGradient {
  lossSum: number;
  /** float32 for the 'fast' reduction, float64 for 'exact' (split-invariant, see gradientSumExact). */
  grad: Float32Array | Float64Array;
  computeMs: number;
}

export function shardGradient(params: Float32Array, indices: Uint32Array, train: Split, reduction: Reduction = 'fast'): ShardGradient {
  const t0 = performance.now();
  const n = indices.length;
  if (n === 0) return { lossSum: 0, grad: reduction === 'exact' ? new Float64Array(SEED_CNN_PARAM_COUNT) : new Float32Array(SEED_CNN_PARAM_COUNT), computeMs: 0 };
  const { images, labels } = gatherShard(train, indices);
  const r = (reduction === 'exact' ? gradientSumExact : gradientSum)(params, images, labels, n);
  return { lossSum: r.lossSum, grad: r.grad, computeMs: performance.now() - t0 };
}
