import { createRng } from '../data/random.js';
import { SEED_CNN_PARAMS, SEED_CNN_PARAM_COUNT } from './seed-cnn-layout.js';

/**
 * Deterministic initial weights from a seed, as Keras initialises them: glorot_uniform kernels
 * (uniform in ±sqrt(6 / (fan_in + fan_out))) and zero biases. Same seed, same bits, on any machine.
 */
export function initSeedCnnParams(seed: number): Float32Array {
  const params = new Float32Array(SEED_CNN_PARAM_COUNT);
  const rng = createRng(seed);
  for (const spec of SEED_CNN_PARAMS) {
    if (!spec.fan) continue;
    const limit = Math.sqrt(6 / (spec.fan.in + spec.fan.out));
    for (let i = 0; i < spec.size; i++) params[spec.offset + i] = (rng.nextFloat() * 2 - 1) * limit;
  }
  return params;
}
