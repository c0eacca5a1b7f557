// The global batch schedule: epoch e visits the training set in a permutation fixed by
// (seed, e), cut into consecutive batches; the last batch of an epoch may be partial.
import { createRng, deriveSeed } from './random.js';

function checkCount(where: string, name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > 0xffffffff) {
    throw new RangeError(`${where}: ${name} must be an integer in [${min}, 2^32-1], got ${String(value)}`);
  }
}

/** The order in which epoch `epoch` visits samples 0..n-1 (Fisher–Yates on the seeded PRNG). */
export function epochPermutation(seed: number, epoch: number, n: number): Uint32Array {
  checkCount('epochPermutation', 'epoch', epoch, 0);
  checkCount('epochPermutation', 'n', n, 0);
  const rng = createRng(deriveSeed(seed, epoch));
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

/** Optimizer steps per epoch: ceil(n / batchSize), counting the last partial batch. */
export function stepsPerEpoch(n: number, batchSize: number): number {
  checkCount('stepsPerEpoch', 'n', n, 0);
  checkCount('stepsPerEpoch', 'batchSize', batchSize, 1);
  return Math.ceil(n / batchSize);
}

/** The sample indices of step `stepInEpoch`: a view into `perm`, shorter for the last batch. */
export function globalBatch(perm: Uint32Array, stepInEpoch: number, batchSize: number): Uint32Array {
  checkCount('globalBatch', 'batchSize', batchSize, 1);
  const steps = Math.ceil(perm.length / batchSize);
  if (!Number.isInteger(stepInEpoch) || stepInEpoch < 0 || stepInEpoch >= steps) {
    throw new RangeError(
      `globalBatch: stepInEpoch must be an integer in [0, ${steps - 1}] ` +
        `(${perm.length} samples, batch ${batchSize}), got ${String(stepInEpoch)}`,
    );
  }
  const start = stepInEpoch * batchSize;
  return perm.subarray(start, Math.min(perm.length, start + batchSize));
}
