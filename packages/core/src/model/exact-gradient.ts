import * as tf from '@tensorflow/tfjs-core';
import { IMAGE_SIZE, NUM_CLASSES, SEED_CNN_PARAMS, SEED_CNN_PARAM_COUNT } from './seed-cnn-layout.js';
import { checkBatch, paramTensors } from './seed-cnn.js';

/** How gradient sums are reduced over samples ('fast': in float32 inside the kernels; 'exact': this file). */
export const REDUCTIONS = ['fast', 'exact'] as const;
export type Reduction = (typeof REDUCTIONS)[number];

export interface ExactGradientSum {
  /** Sum of the per-sample losses, accumulated in float64 in sample order. */
  lossSum: number;
  /** Gradient of lossSum, accumulated in float64 in sample order. */
  grad: Float64Array;
}

/**
 * The gradient sum of a batch, computed so that it does not depend on how a global batch is split.
 *
 * Why: the fast path (`gradientSum`) lets each kernel reduce over the batch in float32, so a batch
 * of 64 and its shards of 32 + 32 round differently (~1e-7). Adam, which normalises each
 * coordinate's step, and the ReLU/max-pool decisions amplify that into weights that drift apart
 * by 1e-3 within 50 steps. Here every reduction over samples is taken out of the kernels:
 *   1. forward and backward run batched on the backend, but only per-sample quantities are formed
 *      (activations, the gradients at each layer's output, and each sample's own weight-gradient
 *      contribution); none of them depends on which other samples share the batch;
 *   2. the per-sample contributions are added in float64, sample by sample. Products of two float32
 *      values are exact in float64, and float64 sums of float32 values are exact unless their
 *      magnitudes span more than ~2^29, so shard sums added later give the same float64 value.
 * The coordinator then adds shard sums in float64 and rounds once. Cost: the per-sample weight
 * gradients are materialised (about 6 million floats for 64 samples), so a step is slower.
 */
export function gradientSumExact(params: Float32Array, images: Float32Array, labels: Int32Array, count: number): ExactGradientSum {
  checkBatch(images, labels, count);
  const n = count;
  const acc = new Float64Array(SEED_CNN_PARAM_COUNT);
  const off = SEED_CNN_PARAMS.map((s) => s.offset);
  let lossSum = 0;

  // Read back inside tidy into an outer variable: returning typed arrays from tf.tidy makes it walk
  // every element looking for tensors (seconds for a few million floats).
  let data: Float32Array[] = [];
  tf.tidy(() => {
    const [w1, b1, w2, b2, w3, b3, w4, b4, w5, b5] = paramTensors(params) as [
      tf.Tensor4D, tf.Tensor1D, tf.Tensor4D, tf.Tensor1D, tf.Tensor4D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D,
    ];
    const x = tf.tensor4d(images, [n, IMAGE_SIZE, IMAGE_SIZE, 1]);
    const y = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), NUM_CLASSES), 'float32');
    const conv = (h: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.fused.conv2d({ x: h, filter: w, bias: b, strides: 1, pad: 'valid' });
    const pool = (h: tf.Tensor4D) => tf.maxPool(h, 2, 2, 'valid');
    const poolGrad = (dy: tf.Tensor4D, input: tf.Tensor4D, output: tf.Tensor4D) =>
      tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor4D;
    const reluGrad = (dy: tf.Tensor, z: tf.Tensor) => tf.mul(dy, tf.step(z));

    // Forward, keeping what the backward needs.
    const z1 = conv(x, w1, b1);
    const a1 = tf.relu(z1);
    const p1 = pool(a1);
    const z2 = conv(p1, w2, b2);
    const a2 = tf.relu(z2);
    const p2 = pool(a2);
    const z3 = conv(p2, w3, b3);
    const f = tf.reshape(tf.relu(z3), [n, -1]) as tf.Tensor2D;
    const z4 = tf.fused.matMul({ a: f, b: w4, bias: b4 });
    const a4 = tf.relu(z4);
    const z5 = tf.fused.matMul({ a: a4, b: w5, bias: b5 });
    const logp = tf.logSoftmax(z5);
    const losses = tf.neg(tf.sum(tf.mul(logp, y), 1));

    // Backward to each layer's pre-activation (per sample, batched).
    const dz5 = tf.sub(tf.exp(logp), y);
    const dz4 = reluGrad(tf.matMul(dz5, w5, false, true), z4) as tf.Tensor2D;
    const dz3 = reluGrad(tf.reshape(tf.matMul(dz4, w4, false, true), z3.shape), z3) as tf.Tensor4D;
    const dz2 = reluGrad(poolGrad(tf.conv2dTranspose(dz3, w3, p2.shape, 1, 'valid'), a2, p2), z2) as tf.Tensor4D;
    const dz1 = reluGrad(poolGrad(tf.conv2dTranspose(dz2, w2, p1.shape, 1, 'valid'), a1, p1), z1) as tf.Tensor4D;

    // Each sample's own conv filter gradient, without a reduction over samples: a depthwise
    // convolution whose channels are the samples (input transposed to [ci, H, W, n], dz to
    // [oh, ow, n, co]) gives [ci, k, k, n * co]. It runs on XNNPACK and is much faster than n small
    // matrix products on this backend.
    const perSampleFilterGrad = (input: tf.Tensor4D, dz: tf.Tensor4D) =>
      tf.depthwiseConv2d(tf.transpose(input, [3, 1, 2, 0]) as tf.Tensor4D, tf.transpose(dz, [1, 2, 0, 3]) as tf.Tensor4D, 1, 'valid');
    data = [
      losses, perSampleFilterGrad(x, dz1), dz1, perSampleFilterGrad(p1, dz2), dz2, perSampleFilterGrad(p2, dz3), dz3,
      f, dz4, a4, dz5,
    ].map((t) => t.dataSync() as Float32Array);
  });
  const [losses, gw1, dz1, gw2, dz2, gw3, dz3, f, dz4, a4, dz5] = data;

  for (let s = 0; s < n; s++) lossSum += losses[s];
  // Conv kernels: per is [ci, k, k, n, co]; the kernel is [k, k, ci, co]. Samples outermost, so
  // every entry receives its contributions in sample order.
  const addPerSample = (per: Float32Array, offset: number, shape: number[]) => {
    const [k, , ci, co] = shape;
    for (let s = 0; s < n; s++) {
      for (let c = 0; c < ci; c++) {
        for (let kk = 0; kk < k * k; kk++) {
          const src = ((c * k * k + kk) * n + s) * co;
          const dst = offset + (kk * ci + c) * co;
          for (let o = 0; o < co; o++) acc[dst + o] += per[src + o];
        }
      }
    }
  };
  // Biases: per sample, the sum over positions (float64), then added in sample order.
  const addBias = (dz: Float32Array, offset: number, channels: number) => {
    const positions = dz.length / (n * channels);
    const part = new Float64Array(channels);
    for (let s = 0; s < n; s++) {
      part.fill(0);
      let i = s * positions * channels;
      for (let p = 0; p < positions; p++) for (let c = 0; c < channels; c++) part[c] += dz[i++];
      for (let c = 0; c < channels; c++) acc[offset + c] += part[c];
    }
  };
  // Dense kernels: outer products, exact in float64, added in sample order.
  const addOuter = (input: Float32Array, dz: Float32Array, offset: number, nin: number, nout: number) => {
    for (let s = 0; s < n; s++) {
      const xi = s * nin;
      const di = s * nout;
      for (let i = 0; i < nin; i++) {
        const v = input[xi + i];
        if (v === 0) continue; // ReLU zeros contribute exact zeros
        const row = offset + i * nout;
        for (let j = 0; j < nout; j++) acc[row + j] += v * dz[di + j];
      }
    }
  };
  const sizes = SEED_CNN_PARAMS.map((p) => p.size);
  const shapes = SEED_CNN_PARAMS.map((p) => p.shape);
  addPerSample(gw1, off[0], shapes[0]);
  addBias(dz1, off[1], sizes[1]);
  addPerSample(gw2, off[2], shapes[2]);
  addBias(dz2, off[3], sizes[3]);
  addPerSample(gw3, off[4], shapes[4]);
  addBias(dz3, off[5], sizes[5]);
  addOuter(f, dz4, off[6], 576, 64);
  addBias(dz4, off[7], sizes[7]);
  addOuter(a4, dz5, off[8], 64, NUM_CLASSES);
  addBias(dz5, off[9], sizes[9]);
  return { lossSum, grad: acc };
}
