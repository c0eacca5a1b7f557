import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/select.js';
import { shardBatch } from '../data/shard.js';
import { initSeedCnnParams } from './init.js';
import { gradientSum } from './seed-cnn.js';
import { gradientSumExact } from './exact-gradient.js';

// Random digits-like inputs: mostly zero background (as MNIST), which is where float32 batch
// reductions and ReLU/max-pool ties make split-dependent rounding visible.
function batch(n: number): { images: Float32Array; labels: Int32Array } {
  const images = new Float32Array(n * 784);
  for (let i = 0; i < images.length; i++) images[i] = Math.random() < 0.2 ? Math.random() : 0;
  return { images, labels: Int32Array.from({ length: n }, () => Math.floor(Math.random() * 10)) };
}

const slice = (b: { images: Float32Array; labels: Int32Array }, idx: Uint32Array) => ({
  images: b.images.subarray(idx[0] * 784, (idx[0] + idx.length) * 784),
  labels: b.labels.subarray(idx[0], idx[0] + idx.length),
});

beforeAll(async () => {
  await initBackend('wasm');
});

describe('gradientSumExact (wasm)', () => {
  it('agrees with the fast gradient to float32 rounding (relative 1e-5)', () => {
    const params = initSeedCnnParams(21);
    const b = batch(16);
    const fast = gradientSum(params, b.images, b.labels, 16);
    const exact = gradientSumExact(params, b.images, b.labels, 16);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < fast.grad.length; i++) {
      scale = Math.max(scale, Math.abs(fast.grad[i]));
      diff = Math.max(diff, Math.abs(fast.grad[i] - exact.grad[i]));
    }
    expect(diff / scale).toBeLessThan(1e-5);
    expect(Math.abs(fast.lossSum - exact.lossSum) / exact.lossSum).toBeLessThan(1e-5);
    expect(exact.grad.every(Number.isFinite)).toBe(true);
  });

  it('does not depend on the split: shard sums round to the same float32 bits as the whole batch', () => {
    const params = initSeedCnnParams(22);
    const n = 64;
    const b = batch(n);
    const whole = gradientSumExact(params, b.images, b.labels, n);
    const all = Uint32Array.from({ length: n }, (_, i) => i);
    for (const workers of [2, 3, 5]) {
      const sum = new Float64Array(whole.grad.length);
      let loss = 0;
      for (const shard of shardBatch(all, workers)) {
        const s = slice(b, shard);
        const r = gradientSumExact(params, s.images, s.labels, shard.length);
        for (let i = 0; i < sum.length; i++) sum[i] += r.grad[i];
        loss += r.lossSum;
      }
      let differing = 0;
      for (let i = 0; i < sum.length; i++) if (Math.fround(sum[i] / n) !== Math.fround(whole.grad[i] / n)) differing++;
      expect(differing, `${workers} shards`).toBe(0);
      expect(Math.fround(loss)).toBe(Math.fround(whole.lossSum));
    }
  });

  it('leaks no tensors', () => {
    const params = initSeedCnnParams(23);
    const b = batch(4);
    gradientSumExact(params, b.images, b.labels, 4);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) gradientSumExact(params, b.images, b.labels, 4);
    expect(tf.memory().numTensors).toBe(before);
  });
});
