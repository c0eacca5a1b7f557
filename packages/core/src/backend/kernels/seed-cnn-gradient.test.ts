// tfjs-core registers no gradient functions by itself; importing tfjs-layers does (as in bench/step.ts).
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initSeedCnnParams } from '../../model/init.js';
import { gradientSum } from '../../model/seed-cnn.js';
import { SEED_CNN_PARAMS } from '../../model/seed-cnn-layout.js';
import { createRng, freshSeed, relativeError } from './kernel-test-support.js';
import { registerDdpWasmKernels, setWasmKernelSet, type WasmKernelSet } from './register.js';

// The whole gradient of the seed CNN for one small batch, wasm (each kernel set) vs cpu.
// Tolerance per parameter tensor: relativeError = max|wasm - cpu| / max(1, max|cpu|) <= 1e-4,
// and the loss sums agree to 1e-5 relative.
const TOLERANCE = 1e-4;
const BATCH = 8;

beforeAll(async () => {
  registerDdpWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

describe.each(['ddp', 'naive'] as WasmKernelSet[])('seed CNN gradient on wasm (%s kernels) vs cpu', (set) => {
  const seed = freshSeed();

  it(`matches per parameter tensor within ${TOLERANCE} (seed ${seed})`, async () => {
    const rng = createRng(seed);
    // Non-zero biases, so that ReLUs are both on and off and every path carries gradient.
    const params = initSeedCnnParams(seed);
    for (const spec of SEED_CNN_PARAMS) {
      if (!spec.fan) for (let i = 0; i < spec.size; i++) params[spec.offset + i] = (rng.nextFloat() - 0.5) * 0.2;
    }
    const images = new Float32Array(BATCH * 28 * 28);
    for (let i = 0; i < images.length; i++) images[i] = rng.nextFloat();
    const labels = Int32Array.from({ length: BATCH }, () => rng.nextBelow(10));

    await tf.setBackend('cpu');
    const ref = gradientSum(params, images, labels, BATCH);
    await tf.setBackend('wasm');
    setWasmKernelSet(set);
    const got = gradientSum(params, images, labels, BATCH);
    setWasmKernelSet('ddp');

    expect(Math.abs(got.lossSum - ref.lossSum) / Math.abs(ref.lossSum)).toBeLessThanOrEqual(1e-5);
    for (const spec of SEED_CNN_PARAMS) {
      const a = got.grad.subarray(spec.offset, spec.offset + spec.size);
      const b = ref.grad.subarray(spec.offset, spec.offset + spec.size);
      expect(relativeError(a, b), `${spec.name} (seed ${seed})`).toBeLessThanOrEqual(TOLERANCE);
    }
  }, 30_000); // the cpu reference takes ~4 s on a busy 2-core machine
});
