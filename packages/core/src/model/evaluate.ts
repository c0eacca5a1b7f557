import { gatherImages, gatherLabels } from '../data/preprocess.js';
import type { Split } from '../data/datasets.js';
import { evaluateBatch } from './seed-cnn.js';

export interface Evaluation {
  /** Mean sparse categorical cross-entropy over the split. */
  loss: number;
  /** Fraction of samples whose arg-max class is the label. */
  accuracy: number;
  samples: number;
}

/** Loss and accuracy of the parameters over a whole split, in batches (no gradients). */
export function evaluateSplit(
  params: Float32Array,
  split: Split,
  opts: { batchSize?: number; onBatch?: (done: number, total: number) => void } = {},
): Evaluation {
  const batchSize = opts.batchSize ?? 500;
  let lossSum = 0;
  let correct = 0;
  const idx = new Uint32Array(batchSize);
  for (let start = 0; start < split.count; start += batchSize) {
    const n = Math.min(batchSize, split.count - start);
    const indices = idx.subarray(0, n);
    for (let i = 0; i < n; i++) indices[i] = start + i;
    const r = evaluateBatch(params, gatherImages(split, indices), gatherLabels(split, indices), n);
    lossSum += r.lossSum;
    correct += r.correct;
    opts.onBatch?.(start + n, split.count);
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count, samples: split.count };
}
