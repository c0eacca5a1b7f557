import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { SEED_CNN_PARAMS, SEED_CNN_PARAM_COUNT } from './seed-cnn-layout.js';
import { initSeedCnnParams } from './init.js';
import { gradientSum, evaluateBatch, paramTensors, seedCnnLogits } from './seed-cnn.js';
import { buildSeedCnnLayersModel, getLayersModelParams, setLayersModelParams } from './keras-model.js';
import { fileLoadHandler, loadSeedCnnParams, saveSeedCnn } from './save.js';

const randomImages = (n: number) => Float32Array.from({ length: n * 784 }, () => Math.random());
const randomLabels = (n: number) => Int32Array.from({ length: n }, () => Math.floor(Math.random() * 10));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('seed CNN layout and initialisation', () => {
  it('has the 93,322 parameters of the Keras model, in its weight order', () => {
    expect(SEED_CNN_PARAM_COUNT).toBe(93322);
    const model = buildSeedCnnLayersModel();
    expect(model.countParams()).toBe(93322);
    expect(model.weights.map((w) => w.shape)).toEqual(SEED_CNN_PARAMS.map((s) => s.shape));
    model.dispose();
  });

  it('initialises deterministically from the seed, glorot-uniform kernels and zero biases', () => {
    const a = initSeedCnnParams(7);
    const b = initSeedCnnParams(7);
    const c = initSeedCnnParams(8);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(0);
    for (const s of SEED_CNN_PARAMS) {
      const v = a.subarray(s.offset, s.offset + s.size);
      if (!s.fan) {
        expect(v.every((x) => x === 0)).toBe(true);
        continue;
      }
      const limit = Math.sqrt(6 / (s.fan.in + s.fan.out));
      expect(Math.max(...v)).toBeLessThanOrEqual(limit);
      expect(Math.min(...v)).toBeGreaterThanOrEqual(-limit);
      // Uniform on [-limit, limit] has variance limit^2 / 3.
      const variance = v.reduce((acc, x) => acc + x * x, 0) / v.length;
      expect(variance / (limit * limit / 3)).toBeGreaterThan(0.7);
      expect(variance / (limit * limit / 3)).toBeLessThan(1.3);
    }
  });

  it('round-trips the flat vector through the layers model', () => {
    const params = initSeedCnnParams(3);
    params[SEED_CNN_PARAM_COUNT - 1] = 0.25; // a non-zero bias too
    const model = buildSeedCnnLayersModel();
    setLayersModelParams(model, params);
    const back = getLayersModelParams(model);
    expect(Buffer.from(back.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    model.dispose();
    expect(() => setLayersModelParams(buildSeedCnnLayersModel(), new Float32Array(5))).toThrow(/93322/);
  });
});

describe('gradientSum (cpu backend)', () => {
  it('matches the gradient of the tfjs-layers model with the same weights (rel. error <= 1e-4)', () => {
    const n = 3;
    const params = initSeedCnnParams(11);
    // Non-zero biases so that their gradients flow through every path.
    for (const s of SEED_CNN_PARAMS) if (!s.fan) for (let i = 0; i < s.size; i++) params[s.offset + i] = (Math.random() - 0.5) * 0.1;
    const images = randomImages(n);
    const labels = randomLabels(n);
    const ours = gradientSum(params, images, labels, n);

    const model = buildSeedCnnLayersModel();
    setLayersModelParams(model, params);
    const x = tf.tensor4d(images, [n, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const { value, grads } = tf.variableGrads(() => {
      const probs = model.apply(x, { training: true }) as tf.Tensor;
      return tf.neg(tf.sum(tf.mul(y, tf.log(probs)))) as tf.Scalar;
    }, vars);
    expect(Math.abs(value.dataSync()[0] - ours.lossSum) / Math.abs(ours.lossSum)).toBeLessThan(1e-4);
    const ref = new Float32Array(SEED_CNN_PARAM_COUNT);
    vars.forEach((v, i) => ref.set(grads[v.name].dataSync() as Float32Array, SEED_CNN_PARAMS[i].offset));
    const scale = Math.max(...ref.map(Math.abs));
    expect(maxAbsDiff(ours.grad, ref) / scale).toBeLessThan(1e-4);
    expect(ours.grad.every(Number.isFinite)).toBe(true);
    model.dispose();
  });

  it('is additive over a split of the batch (the property data parallelism rests on)', () => {
    const params = initSeedCnnParams(5);
    const images = randomImages(3);
    const labels = randomLabels(3);
    const all = gradientSum(params, images, labels, 3);
    const a = gradientSum(params, images.subarray(0, 784), labels.subarray(0, 1), 1);
    const b = gradientSum(params, images.subarray(784), labels.subarray(1), 2);
    const scale = Math.max(...all.grad.map(Math.abs));
    const sum = a.grad.map((v, i) => v + b.grad[i]);
    expect(maxAbsDiff(all.grad, sum) / scale).toBeLessThan(1e-5);
    expect(Math.abs(all.lossSum - a.lossSum - b.lossSum)).toBeLessThan(1e-4);
  });

  it('rejects batches of the wrong shape', () => {
    const params = initSeedCnnParams(1);
    expect(() => gradientSum(params, new Float32Array(784), new Int32Array(2), 2)).toThrow(/pixels/);
    expect(() => gradientSum(new Float32Array(10), new Float32Array(784), new Int32Array(1), 1)).toThrow(/93322/);
  });
});

describe('save and load in the tfjs format', () => {
  it('writes model.json + weights.bin that tf.loadLayersModel reads, with the same predictions', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-model-'));
    const params = initSeedCnnParams(9);
    await saveSeedCnn(params, dir);
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(true);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBe(93322 * 4);

    const loaded = await tfl.loadLayersModel(fileLoadHandler(dir));
    const images = randomImages(4);
    const x = tf.tensor4d(images, [4, 28, 28, 1]);
    const theirs = (loaded.predict(x) as tf.Tensor).dataSync();
    const ours = tf.tidy(() => tf.softmax(seedCnnLogits(paramTensors(params), x)).dataSync());
    expect(maxAbsDiff(theirs, ours)).toBeLessThan(1e-6);
    const back = await loadSeedCnnParams(dir);
    expect(Buffer.from(back.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    const ev = evaluateBatch(back, images, randomLabels(4), 4);
    expect(ev.correct).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(ev.lossSum)).toBe(true);
    loaded.dispose();
  });

  it('says what is wrong with a missing or broken model folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-model-'));
    await expect(loadSeedCnnParams(dir)).rejects.toThrow(/no model.json/);
    fs.writeFileSync(path.join(dir, 'model.json'), '{not json');
    await expect(loadSeedCnnParams(dir)).rejects.toThrow(/not valid JSON/);
  });
});
