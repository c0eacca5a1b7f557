import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, freshSeed, pick, randomInput, relativeError, runOn, type KernelInput, type Rng } from './kernel-test-support.js';
import { filterGradByConvolution, filterGradByIm2col, filterGradBySimd, filterGradByTransposedIm2col } from './Conv2DBackpropFilter.js';
import { inputGradByCol2im, inputGradByConvolution } from './Conv2DBackpropInput.js';
import { registerDdpWasmKernels, setWasmKernelSet, type WasmKernelSet } from './register.js';
import { simdCol2im } from './simd-col2im.js';
import { wasmMemory, type WasmBackend } from './wasm-backend.js';

// Conformance of the conv2d gradient kernels (Conv2DBackpropFilter, Conv2DBackpropInput) on the
// wasm backend, for both kernel sets, against the tfjs cpu backend on fresh random inputs.
const TOLERANCE = 1e-4; // relativeError: max|wasm - cpu| / max(1, max|cpu|)
const CASES = 48;

interface ConvCase {
  n: number; h: number; w: number; ci: number; co: number; k: number; stride: number; pad: 'valid' | 'same';
}

function convCases(seed: number): ConvCase[] {
  const rng = createRng(seed);
  const cases: ConvCase[] = [
    { n: 2, h: 12, w: 12, ci: 1, co: 8, k: 3, stride: 1, pad: 'valid' }, // like the seed CNN's first layer
    { n: 1, h: 5, w: 5, ci: 3, co: 2, k: 3, stride: 2, pad: 'valid' },
    { n: 3, h: 6, w: 7, ci: 5, co: 3, k: 3, stride: 2, pad: 'valid' }, // unused trailing row/column
    { n: 2, h: 8, w: 8, ci: 4, co: 4, k: 2, stride: 1, pad: 'same' }, // even kernel: asymmetric padding
  ];
  while (cases.length < CASES) {
    const k = 1 + rng.nextBelow(3);
    cases.push({
      n: 1 + rng.nextBelow(4), h: 5 + rng.nextBelow(8), w: 5 + rng.nextBelow(8), ci: 1 + rng.nextBelow(8), co: 1 + rng.nextBelow(8),
      k, stride: 1 + rng.nextBelow(2), pad: pick(rng, ['valid', 'same'] as const),
    });
  }
  return cases;
}

const label = (c: ConvCase) => `x[${c.n},${c.h},${c.w},${c.ci}] k${c.k} out${c.co} s${c.stride} ${c.pad}`;

type GradientKernel = 'Conv2DBackpropFilter' | 'Conv2DBackpropInput';

/**
 * One case of a gradient kernel: its convolution, random inputs (first x for the filter gradient
 * or the filter for the input gradient, then dy) and the kernel's attributes.
 */
function gradientCase(kernel: GradientKernel, rng: Rng, c: ConvCase) {
  const info = backend_util.computeConv2DInfo([c.n, c.h, c.w, c.ci], [c.k, c.k, c.ci, c.co], c.stride, 1, c.pad);
  const common = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC' };
  const isFilter = kernel === 'Conv2DBackpropFilter';
  const first = isFilter ? randomInput(rng, [c.n, c.h, c.w, c.ci]) : randomInput(rng, [c.k, c.k, c.ci, c.co]);
  const dy = randomInput(rng, info.outShape);
  const inputs: Record<string, KernelInput> = isFilter ? { x: first, dy } : { dy, filter: first };
  const attrs: NamedAttrMap = isFilter ? { ...common, filterShape: [c.k, c.k, c.ci, c.co] } : { ...common, inputShape: [c.n, c.h, c.w, c.ci] };
  return { info, first, dy, inputs, attrs };
}

type Route = (backend: WasmBackend, a: TensorInfo, b: TensorInfo, info: backend_util.Conv2DInfo) => TensorInfo | null;

/** Runs one route of `kernel` directly (filter routes take (x, dy), input routes (dy, filter)) on each case, against the cpu kernel. */
async function expectRouteMatchesCpu(kernel: GradientKernel, route: Route, cases: ConvCase[], rng: Rng, context: string): Promise<void> {
  for (const c of cases) {
    const { info, first, dy, inputs, attrs } = gradientCase(kernel, rng, c);
    const ref = await runOn('cpu', kernel, inputs, attrs);
    await tf.setBackend('wasm');
    let got: { values: Float32Array; shape: number[] } | undefined;
    tf.tidy(() => {
      const a = tf.tensor(first.values, first.shape);
      const d = tf.tensor(dy.values, dy.shape);
      const backend = tf.backend() as unknown as WasmBackend;
      const out = kernel === 'Conv2DBackpropFilter' ? route(backend, a, d, info) : route(backend, d, a, info);
      expect(out, `route applies to ${label(c)}`).not.toBeNull();
      const t = tf.engine().makeTensorFromTensorInfo(out!);
      got = { values: t.dataSync() as Float32Array, shape: t.shape };
    });
    expect(got!.shape, label(c)).toEqual(ref.shape);
    expect(relativeError(got!.values, ref.values), `${context} ${label(c)}`).toBeLessThanOrEqual(TOLERANCE);
  }
}

beforeAll(async () => {
  registerDdpWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

describe.each(['ddp', 'naive'] as WasmKernelSet[])('conv2d gradient kernels, %s set, vs cpu', (set) => {
  const seed = freshSeed();

  it.each([
    ['Conv2DBackpropFilter', 0],
    ['Conv2DBackpropInput', 0x5bd1e995],
  ] as const)(`%s matches cpu within ${TOLERANCE} (seed ${seed})`, async (kernel, stream) => {
    setWasmKernelSet(set);
    const rng = createRng(seed ^ stream);
    for (const c of convCases(seed)) {
      const { inputs, attrs } = gradientCase(kernel, rng, c);
      const ref = await runOn('cpu', kernel, inputs, attrs);
      const got = await runOn('wasm', kernel, inputs, attrs);
      expect(got.shape, label(c)).toEqual(ref.shape);
      expect(relativeError(got.values, ref.values), `${label(c)} (seed ${seed})`).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});

// Each kernel picks one of two routes by shape; check every route on every case, whatever it picks.
describe('conv2d gradient routes, each on every case, vs cpu', () => {
  const seed = freshSeed();
  const routes = {
    'filter/im2col': filterGradByIm2col,
    'filter/convolution': filterGradByConvolution,
    'input/col2im': inputGradByCol2im,
    'input/convolution': inputGradByConvolution,
  } as const;

  it.each(Object.keys(routes))(`%s matches cpu within ${TOLERANCE} (seed ${seed})`, async (route) => {
    const kernel: GradientKernel = route.startsWith('filter') ? 'Conv2DBackpropFilter' : 'Conv2DBackpropInput';
    await expectRouteMatchesCpu(kernel, routes[route as keyof typeof routes], convCases(seed), createRng(seed), `${route} (seed ${seed})`);
  });
});

describe('Conv2DBackpropInput col2im route with the SIMD col2im (in-channels a multiple of 4)', () => {
  it('has the SIMD routine on this engine', async () => {
    await tf.setBackend('wasm');
    expect(simdCol2im(wasmMemory(tf.backend() as unknown as WasmBackend)!)).not.toBeNull();
  });

  const seed = freshSeed();
  it(`matches cpu within ${TOLERANCE} (seed ${seed})`, async () => {
    const rng = createRng(seed);
    const cases: ConvCase[] = [
      { n: 2, h: 5, w: 5, ci: 4, co: 3, k: 3, stride: 1, pad: 'valid' },
      { n: 1, h: 7, w: 6, ci: 8, co: 5, k: 3, stride: 1, pad: 'same' },
      { n: 3, h: 9, w: 8, ci: 12, co: 2, k: 3, stride: 2, pad: 'valid' },
      { n: 2, h: 8, w: 9, ci: 4, co: 6, k: 2, stride: 2, pad: 'same' },
      { n: 1, h: 6, w: 6, ci: 8, co: 4, k: 1, stride: 2, pad: 'valid' },
    ];
    await expectRouteMatchesCpu('Conv2DBackpropInput', inputGradByCol2im, cases, rng, `(seed ${seed})`);
  });
});

describe('Conv2DBackpropFilter direct SIMD route (small patch, valid padding, out-channels a multiple of 8)', () => {
  const seed = freshSeed();
  it(`matches cpu within ${TOLERANCE} (seed ${seed})`, async () => {
    const rng = createRng(seed);
    const cases: ConvCase[] = [
      { n: 2, h: 12, w: 12, ci: 1, co: 8, k: 3, stride: 1, pad: 'valid' },
      { n: 3, h: 9, w: 7, ci: 1, co: 16, k: 3, stride: 2, pad: 'valid' },
      { n: 1, h: 6, w: 8, ci: 2, co: 8, k: 2, stride: 1, pad: 'valid' },
      { n: 2, h: 7, w: 7, ci: 4, co: 24, k: 2, stride: 2, pad: 'valid' },
      { n: 4, h: 5, w: 6, ci: 3, co: 8, k: 1, stride: 1, pad: 'valid' },
      { n: 64, h: 28, w: 28, ci: 1, co: 32, k: 3, stride: 1, pad: 'valid' }, // the seed CNN's first layer
    ];
    await expectRouteMatchesCpu('Conv2DBackpropFilter', filterGradBySimd, cases, rng, `(seed ${seed})`);
  }, 20_000);

  it('declines what it does not cover', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as WasmBackend;
    const declines = (shape: number[], filter: number[], pad: 'valid' | 'same') =>
      tf.tidy(() => filterGradBySimd(backend, tf.zeros(shape), tf.zeros(backend_util.computeConv2DInfo(shape as [number, number, number, number], filter as [number, number, number, number], 1, 1, pad).outShape), backend_util.computeConv2DInfo(shape as [number, number, number, number], filter as [number, number, number, number], 1, 1, pad)) === null);
    expect(declines([1, 6, 6, 1], [3, 3, 1, 8], 'same')).toBe(true); // padding
    expect(declines([1, 6, 6, 1], [3, 3, 1, 12], 'valid')).toBe(true); // 12 out-channels
    expect(declines([1, 6, 6, 2], [3, 3, 2, 8], 'valid')).toBe(true); // patch 18
    // 'same' at stride 2 on an odd size pads only after: the last window would read past x.
    const shape = [1, 7, 7, 1] as [number, number, number, number];
    const info = backend_util.computeConv2DInfo(shape, [2, 2, 1, 8], 2, 1, 'same');
    expect(info.padInfo.top).toBe(0);
    expect(tf.tidy(() => filterGradBySimd(backend, tf.zeros(shape), tf.zeros(info.outShape), info))).toBeNull();
  });
});

describe('Conv2DBackpropFilter transposed-im2col route (windows inside x, in-channels and n*oh*ow multiples of 4)', () => {
  const seed = freshSeed();
  it(`matches cpu within ${TOLERANCE} on fixed and fresh random shapes (seed ${seed})`, async () => {
    const rng = createRng(seed);
    const cases: ConvCase[] = [
      { n: 4, h: 13, w: 13, ci: 32, co: 64, k: 3, stride: 1, pad: 'valid' }, // the seed CNN's second layer, 4 images
      { n: 8, h: 5, w: 5, ci: 64, co: 64, k: 3, stride: 1, pad: 'valid' }, // its third layer, 8 images
      { n: 2, h: 9, w: 9, ci: 4, co: 3, k: 3, stride: 2, pad: 'valid' },
      { n: 1, h: 5, w: 10, ci: 8, co: 5, k: 2, stride: 1, pad: 'valid' }, // n*oh*ow = 36
    ];
    while (cases.length < 24) {
      const k = 1 + rng.nextBelow(3);
      const c: ConvCase = { n: 4 * (1 + rng.nextBelow(2)), h: k + rng.nextBelow(8), w: k + rng.nextBelow(8), ci: 4 * (1 + rng.nextBelow(4)), co: 1 + rng.nextBelow(9), k, stride: 1 + rng.nextBelow(2), pad: 'valid' };
      cases.push(c);
    }
    await expectRouteMatchesCpu('Conv2DBackpropFilter', filterGradByTransposedIm2col, cases, rng, `(seed ${seed})`);
  }, 30_000);

  it('declines what it does not cover', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as WasmBackend;
    const declines = (shape: [number, number, number, number], filter: [number, number, number, number], pad: 'valid' | 'same') => {
      const info = backend_util.computeConv2DInfo(shape, filter, 1, 1, pad);
      return tf.tidy(() => filterGradByTransposedIm2col(backend, tf.zeros(shape), tf.zeros(info.outShape), info) === null);
    };
    expect(declines([4, 6, 6, 4], [3, 3, 4, 8], 'same')).toBe(true); // padding
    expect(declines([4, 6, 6, 6], [3, 3, 6, 8], 'valid')).toBe(true); // 6 in-channels
    expect(declines([1, 5, 5, 4], [3, 3, 4, 8], 'valid')).toBe(true); // n*oh*ow = 9
    expect(declines([1, 5, 6, 4], [3, 3, 4, 8], 'valid')).toBe(false); // n*oh*ow = 12: it applies
  });
});
