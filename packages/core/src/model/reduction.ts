/**
 * How gradient sums are reduced over samples and ranks.
 *
 * 'fast': each shard's gradient sum comes from one gradientSum call (the kernels add over samples in
 * float32) and the shard sums are added in float32, so the bits depend on the split.
 *
 * 'exact': the same model definition (gradientSum) on fixed micro-shards, added exactly:
 *   1. every global batch is cut into micro-shards of MICRO_SHARD samples by position in the batch
 *      ([0, 16), [16, 32), ...; the last one of a short batch is short);
 *   2. shards are whole numbers of micro-shards (shardBatch with unit MICRO_SHARD), so every
 *      micro-shard's float32 gradient sum is the same bits on whichever rank computes it (same
 *      inputs, same shape, deterministic kernels);
 *   3. those float32 sums, and their float32 loss sums, go into an ExactAccumulator (exact real
 *      sums: no order, grouping or route changes them), which is rounded to float32 once.
 * So any number of workers, star or ring, with members lost or joining, gives the bits of one
 * process running the same micro-shards: that is what `ddp train --workers 0 --reduction exact` does.
 */
import { ExactAccumulator, type ExactSumLayout } from '../allreduce/exact-sum/index.js';
import { IMAGE_SIZE, SEED_CNN_PARAM_COUNT } from './seed-cnn-layout.js';
import { checkBatch, gradientSum } from './seed-cnn.js';

export const REDUCTIONS = ['fast', 'exact'] as const;
export type Reduction = (typeof REDUCTIONS)[number];

/** Samples per micro-shard of the exact reduction. */
export const MICRO_SHARD = 16;

/** Shards are whole numbers of this many samples (shardBatch's unit) under `reduction`. */
export const shardUnit = (reduction: Reduction): number => (reduction === 'exact' ? MICRO_SHARD : 1);

/** Elements of the exact accumulator: the gradient (the parameter layout), then the loss sum. */
export const EXACT_LENGTH = SEED_CNN_PARAM_COUNT + 1;
/** Index of the loss sum in the exact accumulator. */
export const EXACT_LOSS = SEED_CNN_PARAM_COUNT;

/**
 * How exact partial sums travel. Measured on this repo's 2-core build machine (exact-sum/bench.js,
 * the full gradient): encode 0.52 ms raw against 0.91 packed, addEncoded 0.58 against 1.43, and
 * 8 against ~5.5 B/element. Packed saves ~0.23 MB per message and costs ~1.2 ms more CPU, so raw
 * is faster wherever a link moves more than ~190 MB/s (loopback: ~740 MB/s); on a 1 Gbit/s link
 * packed would win by a little.
 */
export const EXACT_LAYOUT: ExactSumLayout = 'raw';

/** An accumulator for one step's exact sums (gradient and loss). */
export const exactAccumulator = (): ExactAccumulator => new ExactAccumulator(EXACT_LENGTH);

/**
 * Adds the exact gradient and loss sums of one shard into `acc` (elements [0, P): the gradient;
 * element P: the loss sum). The shard must start at a micro-shard boundary of its global batch
 * (shardBatch with unit MICRO_SHARD guarantees it); it is cut into micro-shards of MICRO_SHARD
 * samples from its start, each computed with gradientSum. `scratch` (P values) is reused if given.
 */
export function addExactGradient(
  acc: ExactAccumulator,
  params: Float32Array,
  images: Float32Array,
  labels: Int32Array,
  count: number,
  scratch: Float32Array = new Float32Array(SEED_CNN_PARAM_COUNT),
): void {
  if (acc.length !== EXACT_LENGTH) throw new RangeError(`addExactGradient: the accumulator must hold ${EXACT_LENGTH} values, got ${acc.length}`);
  checkBatch(images, labels, count);
  const pixels = IMAGE_SIZE * IMAGE_SIZE;
  const loss = new Float32Array(1);
  for (let start = 0; start < count; start += MICRO_SHARD) {
    const n = Math.min(MICRO_SHARD, count - start);
    const r = gradientSum(params, images.subarray(start * pixels, (start + n) * pixels), labels.subarray(start, start + n), n, scratch);
    acc.add(r.grad, 0);
    loss[0] = r.lossSum; // a float32 value (read from a float32 tensor): exact
    acc.add(loss, EXACT_LOSS);
  }
}

/**
 * One whole batch's gradient sum and loss sum in one process under `reduction`, with buffers kept
 * from batch to batch: what `ddp train --workers 0` computes each step (the reference of every
 * distributed run), and what the step benchmark times. The returned gradient is a view into a
 * buffer that the next call overwrites.
 */
export class BatchGradient {
  private readonly acc: ExactAccumulator | null;
  private readonly scratch = new Float32Array(SEED_CNN_PARAM_COUNT);
  private readonly rounded: Float32Array;

  constructor(readonly reduction: Reduction) {
    this.acc = reduction === 'exact' ? exactAccumulator() : null;
    this.rounded = new Float32Array(this.acc ? EXACT_LENGTH : 0);
  }

  compute(params: Float32Array, images: Float32Array, labels: Int32Array, count: number): { lossSum: number; grad: Float32Array } {
    if (!this.acc) return gradientSum(params, images, labels, count, this.scratch);
    this.acc.reset();
    addExactGradient(this.acc, params, images, labels, count, this.scratch);
    this.acc.toFloat32(this.rounded);
    return { lossSum: this.rounded[EXACT_LOSS]!, grad: this.rounded.subarray(0, EXACT_LOSS) };
  }
}
