// One work order's arithmetic: the shard's images and labels, then the gradient SUM over the shard
// at the given weights: float32 from one gradientSum call ('fast'), or with reduction 'exact' the
// exact sums of the shard's micro-shards (model/reduction.ts), encoded for the wire.
import {
  EXACT_LAYOUT, EXACT_LOSS, SEED_CNN_PARAM_COUNT, addExactGradient, exactAccumulator, gatherShard, gradientSum,
  type ExactAccumulator, type Reduction, type Split,
} from '@ddp/core';

export interface ShardGradient {
  /** The loss sum (with 'exact': this shard's exact loss sum rounded to float32; the coordinator uses the encoded one). */
  lossSum: number;
  /** float32 for the 'fast' reduction; for 'exact' the bytes of the shard's exact gradient and loss sums. */
  grad: Float32Array | Uint8Array;
  computeMs: number;
}

let exactScratch: { acc: ExactAccumulator; grad: Float32Array } | null = null;

export function shardGradient(params: Float32Array, indices: Uint32Array, train: Split, reduction: Reduction = 'fast'): ShardGradient {
  const t0 = performance.now();
  const n = indices.length;
  if (reduction === 'exact') {
    exactScratch ??= { acc: exactAccumulator(), grad: new Float32Array(SEED_CNN_PARAM_COUNT) };
    const { acc, grad } = exactScratch;
    acc.reset();
    if (n > 0) {
      const { images, labels } = gatherShard(train, indices);
      addExactGradient(acc, params, images, labels, n, grad);
    }
    const lossSum = acc.toFloat32(undefined, EXACT_LOSS, EXACT_LOSS + 1)[0]!;
    return { lossSum, grad: acc.encode(0, acc.length, EXACT_LAYOUT), computeMs: performance.now() - t0 };
  }
  if (n === 0) return { lossSum: 0, grad: new Float32Array(SEED_CNN_PARAM_COUNT), computeMs: 0 };
  const { images, labels } = gatherShard(train, indices);
  const r = gradientSum(params, images, labels, n);
  return { lossSum: r.lossSum, grad: r.grad, computeMs: performance.now() - t0 };
}
