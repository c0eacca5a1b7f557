import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers no gradient functions; tfjs-layers' bundle registers them all
// (its ESM deep path is not loadable by Node), and without them tf.valueAndGrads fails.
import '@tensorflow/tfjs-layers';
import { conv2dBiasRelu, denseBiasRelu } from './fused-layers.js';
import { IMAGE_SIZE, NUM_CLASSES, SEED_CNN_PARAMS, SEED_CNN_PARAM_COUNT } from './seed-cnn-layout.js';

/** Views of the flat vector as tensors, in SEED_CNN_PARAMS order. Caller disposes (or runs in tidy). */
export function paramTensors(params: Float32Array): tf.Tensor[] {
  if (params.length !== SEED_CNN_PARAM_COUNT) {
    throw new RangeError(`seed CNN expects ${SEED_CNN_PARAM_COUNT} parameters, got ${params.length}`);
  }
  return SEED_CNN_PARAMS.map((s) => tf.tensor(params.subarray(s.offset, s.offset + s.size), s.shape, 'float32'));
}

/**
 * Forward pass of the seed CNN: logits [n, 10] for images [n, 28, 28, 1].
 * Conv(32)→pool→Conv(64)→pool→Conv(64)→flatten→Dense(64)→Dense(10); the softmax lives in the loss.
 */
export function seedCnnLogits(p: tf.Tensor[], x: tf.Tensor4D): tf.Tensor2D {
  const conv = (h: tf.Tensor4D, i: number, inputGrad = true) =>
    conv2dBiasRelu(h, p[i] as tf.Tensor4D, p[i + 1] as tf.Tensor1D, { inputGrad });
  let h = tf.maxPool(conv(x, 0, false), 2, 2, 'valid'); // the images need no gradient
  h = tf.maxPool(conv(h, 2), 2, 2, 'valid');
  h = conv(h, 4);
  const flat = tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D;
  const hidden = denseBiasRelu(flat, p[6] as tf.Tensor2D, p[7] as tf.Tensor1D);
  return tf.fused.matMul({ a: hidden, b: p[8] as tf.Tensor2D, bias: p[9] }) as tf.Tensor2D;
}

/** Sum over samples of the sparse categorical cross-entropy of softmax(logits). */
export function crossEntropySum(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  // tfjs-backend-wasm 4.22's OneHot ignores the dtype argument: asked for float32 it writes int32
  // bits into a float32 tensor (1 reads as 1.4e-45). An int32 one-hot cast to float32 is right everywhere.
  const oneHot = tf.cast(tf.oneHot(labels, NUM_CLASSES), 'float32');
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot))) as tf.Scalar;
}

export function checkBatch(images: Float32Array, labels: Int32Array, count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`batch size must be a positive integer, got ${count}`);
  if (images.length !== count * IMAGE_SIZE * IMAGE_SIZE) {
    throw new RangeError(`expected ${count}x${IMAGE_SIZE}x${IMAGE_SIZE} pixels, got ${images.length}`);
  }
  if (labels.length !== count) throw new RangeError(`expected ${count} labels, got ${labels.length}`);
}

export interface GradientSum {
  /** Sum over the batch of the per-sample losses. */
  lossSum: number;
  /** Gradient of lossSum with respect to the flat parameters (same layout). */
  grad: Float32Array;
}

/**
 * The gradient of the SUM of per-sample losses over one batch (not the mean): sums from any
 * split of a global batch add up to the global sum, which is what makes N workers equal one process.
 * Written into `out` when given (a buffer reused step after step spares the garbage collector).
 */
export function gradientSum(params: Float32Array, images: Float32Array, labels: Int32Array, count: number, out?: Float32Array): GradientSum {
  checkBatch(images, labels, count);
  if (out && out.length !== SEED_CNN_PARAM_COUNT) throw new RangeError(`gradientSum: out must hold ${SEED_CNN_PARAM_COUNT} values, got ${out.length}`);
  const grad = out ?? new Float32Array(SEED_CNN_PARAM_COUNT);
  let lossSum = 0;
  tf.tidy(() => {
    const p = paramTensors(params);
    const x = tf.tensor4d(images, [count, IMAGE_SIZE, IMAGE_SIZE, 1]);
    const y = tf.tensor1d(labels, 'int32');
    const f = (...w: tf.Tensor[]) => crossEntropySum(seedCnnLogits(w, x), y);
    const { value, grads } = tf.valueAndGrads(f)(p);
    lossSum = value.dataSync()[0];
    SEED_CNN_PARAMS.forEach((s, i) => grad.set(grads[i].dataSync() as Float32Array, s.offset));
  });
  return { lossSum, grad };
}

export interface BatchEvaluation {
  lossSum: number;
  correct: number;
}

/** Loss sum and number of correct predictions for one batch, without gradients. */
export function evaluateBatch(params: Float32Array, images: Float32Array, labels: Int32Array, count: number): BatchEvaluation {
  checkBatch(images, labels, count);
  return tf.tidy(() => {
    const p = paramTensors(params);
    const x = tf.tensor4d(images, [count, IMAGE_SIZE, IMAGE_SIZE, 1]);
    const y = tf.tensor1d(labels, 'int32');
    const logits = seedCnnLogits(p, x);
    const lossSum = crossEntropySum(logits, y).dataSync()[0];
    const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')).dataSync()[0];
    return { lossSum, correct };
  });
}
