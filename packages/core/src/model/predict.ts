import * as tf from '@tensorflow/tfjs-core';
import { IMAGE_SIZE, NUM_CLASSES } from './seed-cnn-layout.js';
import { paramTensors, seedCnnLogits } from './seed-cnn.js';

/** Images per forward pass when predicting: bounds the activations' memory for a large input. */
export const PREDICT_BATCH = 500;

export interface ClassProbability {
  class: number;
  probability: number;
}

/**
 * The class probabilities (softmax of the seed CNN's logits) of `count` images given as
 * count*28*28 float32 pixels already scaled like the training inputs (see scalePixels):
 * count*10 values, image after image. Runs in batches of PREDICT_BATCH, each in tf.tidy.
 */
export function predictProbabilities(params: Float32Array, images: Float32Array, count: number, onBatch?: (done: number, total: number) => void): Float32Array {
  const pixels = IMAGE_SIZE * IMAGE_SIZE;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`predictProbabilities: count must be a non-negative integer, got ${count}`);
  if (images.length !== count * pixels) {
    throw new RangeError(`predictProbabilities: expected ${count}x${IMAGE_SIZE}x${IMAGE_SIZE} = ${count * pixels} pixels, got ${images.length}`);
  }
  const out = new Float32Array(count * NUM_CLASSES);
  const p = paramTensors(params);
  try {
    for (let start = 0; start < count; start += PREDICT_BATCH) {
      const n = Math.min(PREDICT_BATCH, count - start);
      const probs = tf.tidy(() => {
        const x = tf.tensor4d(images.subarray(start * pixels, (start + n) * pixels), [n, IMAGE_SIZE, IMAGE_SIZE, 1]);
        return tf.softmax(seedCnnLogits(p, x)).dataSync() as Float32Array;
      });
      out.set(probs, start * NUM_CLASSES);
      onBatch?.(start + n, count);
    }
  } finally {
    tf.dispose(p);
  }
  return out;
}

/** The k most probable classes of one image's probabilities, most probable first (ties: smaller class first). */
export function topClasses(probabilities: ArrayLike<number>, k: number): ClassProbability[] {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`topClasses: k must be a positive integer, got ${k}`);
  const all: ClassProbability[] = Array.from({ length: probabilities.length }, (_, c) => ({ class: c, probability: probabilities[c] }));
  all.sort((a, b) => b.probability - a.probability || a.class - b.class);
  return all.slice(0, k);
}
