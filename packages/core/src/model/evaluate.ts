import { gatherShard } from '../data/preprocess.js';
import type { Split } from '../data/datasets.js';
import { evaluateBatch } from './seed-cnn.js';

export interface Evaluation {
  /** Mean sparse categorical cross-entropy over the split. */
  loss: number;
  /** Fraction of samples whose arg-max class is the label. */
  accuracy: number;
  samples: number;
}

/** Samples per evaluation batch: the unit in which an evaluation is shared among workers. */
export const EVAL_BATCH = 500;

/** A range of a split evaluated batch by batch: each batch's loss sum, in order, and the correct predictions. */
export interface RangeEvaluation {
  lossSums: Float64Array;
  correct: number;
}

/**
 * Evaluates samples [start, end) of a split in batches of EVAL_BATCH from `start` (no gradients).
 * Evaluating [0, count) in pieces that start at multiples of EVAL_BATCH gives the same batches,
 * hence bitwise the same loss sums, as one pass, whichever process computes each piece.
 */
export function evaluateRange(params: Float32Array, split: Split, start: number, end: number, onBatch?: (done: number) => void): RangeEvaluation {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= split.count)) {
    throw new RangeError(`evaluateRange: [${start}, ${end}) is not a range of the ${split.count} samples`);
  }
  const lossSums = new Float64Array(Math.ceil((end - start) / EVAL_BATCH));
  let correct = 0;
  const idx = new Uint32Array(EVAL_BATCH);
  for (let b = 0, at = start; at < end; b++, at += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, end - at);
    const indices = idx.subarray(0, n);
    for (let i = 0; i < n; i++) indices[i] = at + i;
    const { images, labels } = gatherShard(split, indices);
    const r = evaluateBatch(params, images, labels, n);
    lossSums[b] = r.lossSum;
    correct += r.correct;
    onBatch?.(at + n);
  }
  return { lossSums, correct };
}

/** The whole split's evaluation from its ranges' results, in order: the loss sums are added batch by batch. */
export function combineEvaluation(parts: readonly RangeEvaluation[], count: number): Evaluation {
  let lossSum = 0;
  let correct = 0;
  for (const p of parts) {
    for (const x of p.lossSums) lossSum += x;
    correct += p.correct;
  }
  return { loss: lossSum / count, accuracy: correct / count, samples: count };
}

/** How `count` samples are shared among `members`: contiguous ranges of whole evaluation batches, in order. */
export function evaluationRanges(count: number, members: number): Array<{ start: number; end: number }> {
  const batches = Math.ceil(count / EVAL_BATCH);
  const out: Array<{ start: number; end: number }> = [];
  let b = 0;
  for (let m = 0; m < members; m++) {
    const take = Math.floor(batches / members) + (m < batches % members ? 1 : 0);
    if (take === 0) continue;
    out.push({ start: b * EVAL_BATCH, end: Math.min(count, (b + take) * EVAL_BATCH) });
    b += take;
  }
  return out;
}

/** Loss and accuracy of the parameters over a whole split, in batches (no gradients). */
export function evaluateSplit(params: Float32Array, split: Split, opts: { onBatch?: (done: number, total: number) => void } = {}): Evaluation {
  return combineEvaluation([evaluateRange(params, split, 0, split.count, (done) => opts.onBatch?.(done, split.count))], split.count);
}
