// tfjs-core registers no gradient functions by itself; importing tfjs-layers does.
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerDdpWasmKernels } from '../backend/kernels/index.js';
import { createRng, freshSeed, randomInput, relativeError, type KernelInput, type Rng } from '../backend/kernels/kernel-test-support.js';
import { conv2dBiasRelu, denseBiasRelu, layerFusion, reluBiasGrad, setLayerFusion } from './fused-layers.js';

// The fused layers against the plain composition tfjs would tape (conv2d / matMul, add, relu), on
// fresh random inputs: values and every gradient, on cpu (the reference) and on wasm (ddp's kernels,
// DdpReluBiasGrad included). Tolerance: relativeError (max|a - b| / max(1, max|b|), NaN never
// passes) <= 1e-5 on one backend, <= 1e-4 wasm against cpu, as the kernel tests.
const SAME_BACKEND = 1e-5;
const ACROSS = 1e-4;

beforeAll(async () => {
  registerDdpWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});
afterEach(() => {
  setLayerFusion(true);
});

type Layer = 'conv' | 'conv-no-input-grad' | 'dense';
interface Case { layer: Layer; x: KernelInput; w: KernelInput; b: KernelInput; dy: KernelInput }

function randomCase(rng: Rng, layer: Layer): Case {
  const n = 1 + rng.nextBelow(5);
  if (layer === 'dense') {
    const k = 1 + rng.nextBelow(40);
    const m = 1 + rng.nextBelow(20);
    return { layer, x: randomInput(rng, [n, k]), w: randomInput(rng, [k, m]), b: randomInput(rng, [m]), dy: randomInput(rng, [n, m]) };
  }
  const h = 3 + rng.nextBelow(10);
  const w = 3 + rng.nextBelow(10);
  const ci = 1 + rng.nextBelow(6);
  // Out-channels both multiples of 4 (DdpReluBiasGrad's SIMD routine) and not (its JS loop).
  const co = 1 + rng.nextBelow(12);
  return { layer, x: randomInput(rng, [n, h, w, ci]), w: randomInput(rng, [3, 3, ci, co]), b: randomInput(rng, [co]), dy: randomInput(rng, [n, h - 2, w - 2, co]) };
}

/** y and the gradients of sum(y * dy) with respect to the layer's inputs, fused or composed. */
function run(c: Case, fused: boolean): Float32Array[] {
  const was = setLayerFusion(fused);
  try {
    return tf.tidy(() => {
      const t = (k: KernelInput) => tf.tensor(k.values, k.shape, 'float32');
      const x = t(c.x);
      const dy = t(c.dy);
      const layer = (input: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        c.layer === 'dense'
          ? denseBiasRelu(input as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D)
          : conv2dBiasRelu(input as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D, { inputGrad: c.layer !== 'conv-no-input-grad' });
      const y = layer(x, t(c.w), t(c.b));
      const grads = c.layer === 'conv-no-input-grad'
        ? tf.grads((w: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layer(x, w, b), dy)))([t(c.w), t(c.b)])
        : tf.grads((input: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layer(input, w, b), dy)))([x, t(c.w), t(c.b)]);
      return [y, ...grads].map((g) => g.dataSync() as Float32Array);
    });
  } finally {
    setLayerFusion(was);
  }
}

describe('fused conv/dense + bias + relu layers', () => {
  const seed = freshSeed();

  it(`equal the composed layers in value and gradients, on cpu and on wasm, and wasm equals cpu (seed ${seed})`, async () => {
    const rng = createRng(seed);
    for (let i = 0; i < 36; i++) {
      const c = randomCase(rng, (['conv', 'conv-no-input-grad', 'dense'] as const)[i % 3]!);
      const what = `${c.layer} x[${c.x.shape}] w[${c.w.shape}] (seed ${seed}, case ${i})`;
      await tf.setBackend('cpu');
      const cpuComposed = run(c, false);
      const cpuFused = run(c, true);
      await tf.setBackend('wasm');
      const wasmComposed = run(c, false);
      const wasmFused = run(c, true);
      expect(cpuFused.length).toBe(c.layer === 'conv-no-input-grad' ? 3 : 4);
      cpuComposed.forEach((ref, k) => {
        expect(relativeError(cpuFused[k]!, ref), `cpu, output ${k}: ${what}`).toBeLessThanOrEqual(SAME_BACKEND);
        expect(relativeError(wasmFused[k]!, wasmComposed[k]!), `wasm, output ${k}: ${what}`).toBeLessThanOrEqual(SAME_BACKEND);
        expect(relativeError(wasmFused[k]!, ref), `wasm vs cpu, output ${k}: ${what}`).toBeLessThanOrEqual(ACROSS);
      });
    }
  }, 60_000);

  it('let a NaN through to the gradients, as the composed layers do', async () => {
    const rng = createRng(freshSeed());
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      for (const layer of ['conv', 'dense'] as const) {
        const c = randomCase(rng, layer);
        c.dy.values[0] = NaN;
        const [, ...grads] = run(c, true);
        for (const g of grads.slice(-2)) expect(g.some(Number.isNaN), `${backend} ${layer}`).toBe(true);
      }
    }
    await tf.setBackend('wasm');
  });

  it('setLayerFusion switches and reports the previous setting', () => {
    expect(layerFusion()).toBe(true);
    expect(setLayerFusion(false)).toBe(true);
    expect(layerFusion()).toBe(false);
    expect(setLayerFusion(true)).toBe(false);
  });
});

describe('reluBiasGrad (DdpReluBiasGrad on wasm, tfjs ops on cpu)', () => {
  const seed = freshSeed();

  // The bias sums: DdpReluBiasGrad adds each image's pixels in float32 (at most 81 here), then the
  // images in float64; tfjs' cpu Sum adds in float64. A float32 running sum of k terms is off by at
  // most (k - 1) * 2^-24 * sum|terms|, hence the bound 81 * 2^-24 * sum|dz| (with 1e-30 for all-zero sums).
  const sumBound = (absSum: number) => 81 * 2 ** -24 * absSum + 1e-30;

  it(`gives dz = dy * step(y) bit for bit and the bias sums within the float32 rounding bound, NaN and zeros of both signs included (seed ${seed})`, async () => {
    const rng = createRng(seed);
    for (let i = 0; i < 24; i++) {
      const c = 1 + rng.nextBelow(70);
      const shape = i % 2 === 0 ? [1 + rng.nextBelow(6), 1 + rng.nextBelow(9), 1 + rng.nextBelow(9), c] : [1 + rng.nextBelow(30), c];
      // y as a relu output: zeros (of both signs) in about half the places; dy with wide magnitudes.
      const y = randomInput(rng, shape, (v) => (v < -0.6 ? 0 : v < -0.2 ? -0 : Math.abs(v)));
      const dy = randomInput(rng, shape, (v) => v * 10 ** rng.nextBelow(4));
      // One NaN in y and one in dy (most channels keep finite sums): dz and the sums must carry them.
      y.values[rng.nextBelow(y.values.length)] = NaN;
      dy.values[rng.nextBelow(dy.values.length)] = NaN;
      const what = `[${shape}] (seed ${seed}, case ${i})`;
      const out: Record<string, Float32Array[]> = {};
      for (const backend of ['cpu', 'wasm'] as const) {
        await tf.setBackend(backend);
        out[backend] = tf.tidy(() => reluBiasGrad(tf.tensor(dy.values, shape), tf.tensor(y.values, shape)).map((t) => t.dataSync() as Float32Array));
      }
      const [cpuDz, cpuDb] = out.cpu!;
      const [wasmDz, wasmDb] = out.wasm!;
      expect(Buffer.from(wasmDz!.buffer).equals(Buffer.from(cpuDz!.buffer)), `dz ${what}`).toBe(true);
      expect(cpuDz!.some(Number.isNaN), `a NaN reaches dz ${what}`).toBe(true);
      const absSum = new Float64Array(c);
      for (let j = 0; j < cpuDz!.length; j++) absSum[j % c] += Math.abs(cpuDz![j]!);
      let finite = 0;
      for (let k = 0; k < c; k++) {
        const a = wasmDb![k]!;
        const b = cpuDb![k]!;
        if (Number.isNaN(b)) {
          expect(a, `db[${k}] ${what}`).toBeNaN();
        } else {
          finite++;
          expect(Math.abs(a - b), `db[${k}] ${what}`).toBeLessThanOrEqual(sumBound(absSum[k]!));
        }
      }
      expect(finite, `channels with finite sums ${what}`).toBeGreaterThanOrEqual(c - 2);
    }
  });
});
