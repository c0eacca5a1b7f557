// One work order's arithmetic: the shard's images and labels (read locally, or as sent with
// --serve-data), then the gradient SUM over the shard at the given weights.
import { gatherImages, gatherLabels, gradientSum, gradientSumExact, SEED_CNN_PARAM_COUNT, type Reduction, type Split, type WorkMessage } from '@ddp/core';

export interface ShardGradient {
  lossSum: number;
  /** float32 for the 'fast' reduction, float64 for 'exact' (split-invariant, see gradientSumExact). */
  grad: Float32Array | Float64Array;
  computeMs: number;
}

/**
 * `train` is the local training split, or null with --serve-data (then the pixels are in the message).
 * Served pixels go through the same gatherImages scaling as local ones, so both give the same bits.
 */
export function shardGradient(work: WorkMessage, train: Split | null, rows: number, cols: number, reduction: Reduction = 'fast'): ShardGradient {
  const t0 = performance.now();
  const n = work.indices.length;
  if (n === 0) return { lossSum: 0, grad: reduction === 'exact' ? new Float64Array(SEED_CNN_PARAM_COUNT) : new Float32Array(SEED_CNN_PARAM_COUNT), computeMs: 0 };
  let images: Float32Array;
  let labels: Int32Array;
  if (work.images && work.labels) {
    const served: Split = { images: work.images, labels: work.labels, count: n, rows, cols };
    const local = Uint32Array.from({ length: n }, (_, i) => i);
    images = gatherImages(served, local);
    labels = gatherLabels(served, local);
  } else {
    if (!train) throw new Error('work without pixels, but this worker has no local data set');
    images = gatherImages(train, work.indices);
    labels = gatherLabels(train, work.indices);
  }
  const r = (reduction === 'exact' ? gradientSumExact : gradientSum)(work.params, images, labels, n);
  return { lossSum: r.lossSum, grad: r.grad, computeMs: performance.now() - t0 };
}
