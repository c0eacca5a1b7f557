import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, freshSeed, pick, randomInput, relativeError, runOn, type KernelInput } from './kernel-test-support.js';
import { registerDdpWasmKernels, setWasmKernelSet, type WasmKernelSet } from './register.js';
import { simdMaxPoolGrad2x2 } from './simd-max-pool-grad.js';
import { wasmMemory, type WasmBackend } from './wasm-backend.js';

// Conformance of MaxPoolGrad, Sum, BatchMatMul and Identity on the wasm backend, for both kernel
// sets, against the tfjs cpu backend on fresh random inputs.
const TOLERANCE = 1e-4; // relativeError: max|wasm - cpu| / max(1, max|cpu|)

beforeAll(async () => {
  registerDdpWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

/** The forward max pool on cpu, whose output MaxPoolGrad receives. */
async function maxPoolOnCpu(x: KernelInput, attrs: { filterSize: number[]; strides: number[]; pad: string }): Promise<KernelInput> {
  const out = await runOn('cpu', 'MaxPool', { x }, attrs);
  return { values: out.values, shape: out.shape };
}

describe.each(['ddp', 'naive'] as WasmKernelSet[])('pool and reduction kernels, %s set, vs cpu', (set) => {
  const seed = freshSeed();

  it(`MaxPoolGrad matches cpu within ${TOLERANCE}, ties included (seed ${seed})`, async () => {
    setWasmKernelSet(set);
    const rng = createRng(seed);
    for (let t = 0; t < 48; t++) {
      const f = t < 4 ? 2 : 1 + rng.nextBelow(3);
      const s = t < 4 ? 2 : 1 + rng.nextBelow(3);
      const pad = t < 2 ? 'valid' : pick(rng, ['valid', 'same'] as const);
      const shape = [1 + rng.nextBelow(4), 5 + rng.nextBelow(8), 5 + rng.nextBelow(8), 1 + rng.nextBelow(8)];
      // Every other case goes through a ReLU, so that many windows are all zeros (ties), and some
      // cases are all negative, as after a layer without activation.
      const map = t % 2 === 1 ? (v: number) => Math.max(0, v) : t % 5 === 0 ? (v: number) => -1 - Math.abs(v) : (v: number) => v;
      const x = randomInput(rng, shape, map);
      const attrs = { filterSize: [f, f], strides: [s, s], pad };
      const y = await maxPoolOnCpu(x, attrs);
      const dy = randomInput(rng, y.shape);
      const label = `x[${shape}] pool ${f} stride ${s} ${pad}${t % 2 === 1 ? ' after relu' : ''} (seed ${seed})`;
      const ref = await runOn('cpu', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
      const got = await runOn('wasm', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
      expect(got.shape, label).toEqual(ref.shape);
      expect(relativeError(got.values, ref.values), label).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it(`Sum matches cpu within ${TOLERANCE} for bias-gradient and other axes (seed ${seed})`, async () => {
    setWasmKernelSet(set);
    const rng = createRng(seed ^ 0x1234567);
    const cases: Array<{ shape: number[]; axis: number[]; keepDims: boolean }> = [
      { shape: [64, 26, 26, 32], axis: [0, 1, 2], keepDims: false }, // the seed CNN's first bias gradient
      { shape: [3, 5, 7, 6], axis: [0, 1, 2], keepDims: true },
      { shape: [4, 1, 1, 5], axis: [0, 1, 2], keepDims: false },
      { shape: [64, 10], axis: [0], keepDims: false },
      { shape: [6, 4, 3], axis: [0, 1], keepDims: false },
      { shape: [6, 4, 3], axis: [1], keepDims: false }, // not leading: stock path
      { shape: [6, 4, 3], axis: [2, 0], keepDims: true }, // not leading: stock path
      { shape: [5, 7], axis: [0, 1], keepDims: false }, // all axes: stock path
    ];
    for (const c of cases) {
      const x = randomInput(rng, c.shape);
      const attrs = { axis: c.axis, keepDims: c.keepDims };
      const ref = await runOn('cpu', 'Sum', { x }, attrs);
      const got = await runOn('wasm', 'Sum', { x }, attrs);
      const label = `sum x[${c.shape}] axis [${c.axis}] keepDims ${c.keepDims} (seed ${seed})`;
      expect(got.shape, label).toEqual(ref.shape);
      expect(relativeError(got.values, ref.values), label).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it(`BatchMatMul matches cpu within ${TOLERANCE} with and without transposes (seed ${seed})`, async () => {
    setWasmKernelSet(set);
    const rng = createRng(seed ^ 0x7654321);
    for (let t = 0; t < 24; t++) {
      const [m, k, n] = [1 + rng.nextBelow(40), 1 + rng.nextBelow(40), 1 + rng.nextBelow(40)];
      const transposeA = t % 2 === 1;
      const transposeB = t % 4 >= 2;
      const batch = t >= 20 ? [2] : t >= 16 ? [1] : [];
      const a = randomInput(rng, [...batch, ...(transposeA ? [k, m] : [m, k])]);
      const b = randomInput(rng, [...batch, ...(transposeB ? [n, k] : [k, n])]);
      const attrs = { transposeA, transposeB };
      const ref = await runOn('cpu', 'BatchMatMul', { a, b }, attrs);
      const got = await runOn('wasm', 'BatchMatMul', { a, b }, attrs);
      const label = `matmul a[${a.shape}] b[${b.shape}] tA ${transposeA} tB ${transposeB} (seed ${seed})`;
      expect(got.shape, label).toEqual(ref.shape);
      expect(relativeError(got.values, ref.values), label).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('Cast keeps values for a same-dtype cast and converts otherwise', async () => {
    setWasmKernelSet(set);
    const values = randomInput(createRng(seed), [3, 4], (v) => v * 10).values;
    const a = tf.tensor(values, [3, 4]);
    const same = tf.cast(a, 'float32');
    const ints = tf.cast(a, 'int32');
    a.dispose();
    expect(Array.from(same.dataSync())).toEqual(Array.from(values));
    expect(Array.from(ints.dataSync())).toEqual(Array.from(values, (v) => Math.trunc(v) | 0));
    expect(tf.tidy(() => Array.from(tf.cast(tf.tensor([true, false], [2], 'bool'), 'float32').dataSync()))).toEqual([1, 0]);
    same.dispose();
    ints.dispose();
  });

  it('Identity (tf.clone) keeps values and survives disposal of the original', async () => {
    setWasmKernelSet(set);
    const values = randomInput(createRng(seed), [3, 4]).values;
    const a = tf.tensor(values, [3, 4]);
    const b = tf.clone(a);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual(Array.from(values));
    b.dispose();
  });
});

it('MaxPoolGrad sends each window gradient to its first maximum', async () => {
  // A hand-made case: windows with ties (all zeros, two equal maxima) and one without.
  setWasmKernelSet('ddp');
  const x = { values: Float32Array.from([0, 0, 5, 5, 0, 0, 1, 2]), shape: [1, 2, 4, 1] };
  const dy = { values: Float32Array.from([10, 20]), shape: [1, 1, 2, 1] };
  const attrs = { filterSize: [2, 2], strides: [2, 2], pad: 'valid' };
  const y = { values: Float32Array.from([0, 5]), shape: [1, 1, 2, 1] };
  const got = await runOn('wasm', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
  expect(Array.from(got.values)).toEqual([10, 0, 20, 0, 0, 0, 0, 0]);
  const info = backend_util.computePool2DInfo([1, 2, 4, 1], [2, 2], [2, 2], 1, 'valid');
  expect(info.outShape).toEqual([1, 1, 2, 1]);
});

it('MaxPoolGrad agrees with cpu on windows holding NaN, infinities, -0 and +0', async () => {
  const seed = freshSeed();
  const rng = createRng(seed);
  const specials = [Number.NaN, Infinity, -Infinity, -0, 0, 0, 1, 1, -1, 0.5];
  for (const set of ['ddp', 'naive'] as WasmKernelSet[]) {
    setWasmKernelSet(set);
    for (const pad of ['valid', 'same'] as const) {
      const x = randomInput(rng, [2, 7, 6, 3], () => pick(rng, specials));
      const attrs = { filterSize: [2, 2], strides: [2, 2], pad };
      const y = await maxPoolOnCpu(x, attrs);
      const dy = randomInput(rng, y.shape);
      const ref = await runOn('cpu', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
      const got = await runOn('wasm', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
      expect(relativeError(got.values, ref.values), `${set} ${pad} (seed ${seed})`).toBeLessThanOrEqual(TOLERANCE);
    }
  }
});

describe('MaxPoolGrad, 2x2 stride-2 SIMD route', () => {
  it('is available on this engine (so the cases below exercise it)', async () => {
    await tf.setBackend('wasm');
    const memory = wasmMemory(tf.backend() as unknown as WasmBackend);
    expect(memory).toBeDefined();
    expect(simdMaxPoolGrad2x2(memory!)).not.toBeNull();
  });

  it.each([
    ['random', (v: number) => v],
    ['after a ReLU (ties at zero)', (v: number) => Math.max(0, v)],
    ['all negative', (v: number) => -1 - Math.abs(v)],
    ['with -0, +0, NaN and infinities', null],
  ] as const)(`matches cpu within ${TOLERANCE}: %s`, async (_name, map) => {
    setWasmKernelSet('ddp');
    const seed = freshSeed();
    const rng = createRng(seed);
    const specials = [Number.NaN, Infinity, -Infinity, -0, 0, 0, 1, 1, -1, 0.5];
    for (const shape of [[2, 6, 6, 4], [3, 7, 8, 8], [1, 8, 5, 32], [2, 13, 13, 12]]) {
      const x = randomInput(rng, shape, map ?? (() => pick(rng, specials)));
      for (const pad of ['valid', 'same'] as const) {
        const attrs = { filterSize: [2, 2], strides: [2, 2], pad };
        const y = await maxPoolOnCpu(x, attrs);
        const dy = randomInput(rng, y.shape);
        const ref = await runOn('cpu', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
        const got = await runOn('wasm', 'MaxPoolGrad', { dy, input: x, output: y }, attrs);
        expect(relativeError(got.values, ref.values), `x[${shape}] ${pad} (seed ${seed})`).toBeLessThanOrEqual(TOLERANCE);
      }
    }
  });
});
