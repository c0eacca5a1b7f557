import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/select.js';
import { initSeedCnnParams } from './init.js';
import { PREDICT_BATCH, predictProbabilities, topClasses } from './predict.js';
import { NUM_CLASSES } from './seed-cnn-layout.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('predictProbabilities', () => {
  it('gives softmax rows that sum to 1, the same for an image whichever batch it falls in, and leaks no tensor', () => {
    const params = initSeedCnnParams(7);
    const count = PREDICT_BATCH + 3;
    const images = Float32Array.from({ length: count * 784 }, (_, i) => ((i * 2654435761) >>> 24) / 255);
    const before = tf.memory().numTensors;
    const probs = predictProbabilities(params, images, count);
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < count; i++) {
      const row = probs.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    }
    const last = predictProbabilities(params, images.subarray((count - 1) * 784), 1);
    for (let c = 0; c < NUM_CLASSES; c++) expect(last[c]).toBeCloseTo(probs[(count - 1) * NUM_CLASSES + c], 6);
  });
});

describe('topClasses', () => {
  it('takes the k most probable classes, most probable first, ties by class', () => {
    expect(topClasses([0.1, 0.5, 0.1, 0.3], 3)).toEqual([
      { class: 1, probability: 0.5 },
      { class: 3, probability: 0.3 },
      { class: 0, probability: 0.1 },
    ]);
    expect(topClasses([0.2, 0.8], 5)).toHaveLength(2);
    expect(() => topClasses([1], 0)).toThrow(RangeError);
  });
});
