import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerDdpWasmKernels, setWasmKernelSet } from './register.js';

// What ddp's kernels do not support must fail loudly, naming the kernel, the attribute and what is
// supported, rather than return a gradient computed under a wrong assumption.
beforeAll(async () => {
  registerDdpWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

const x = () => tf.zeros([1, 6, 6, 2]);
const dy = () => tf.zeros([1, 4, 4, 3]);
const filter = () => tf.zeros([3, 3, 2, 3]);
const filterGrad = (attrs: NamedAttrMap) => () =>
  tf.tidy(() => tf.engine().runKernel('Conv2DBackpropFilter', { x: x(), dy: dy() }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3], ...attrs }));
const inputGrad = (attrs: NamedAttrMap) => () =>
  tf.tidy(() => tf.engine().runKernel('Conv2DBackpropInput', { dy: dy(), filter: filter() }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', inputShape: [1, 6, 6, 2], ...attrs }));
const poolGrad = (attrs: NamedAttrMap) => () =>
  tf.tidy(() => tf.engine().runKernel('MaxPoolGrad', { dy: tf.zeros([1, 3, 3, 2]), input: x(), output: tf.zeros([1, 3, 3, 2]) }, { filterSize: 2, strides: 2, pad: 'valid', ...attrs }));

describe.each([
  ['Conv2DBackpropFilter', filterGrad],
  ['Conv2DBackpropInput', inputGrad],
])('%s rejects what it does not support', (kernel, run) => {
  it.each([
    ['pad', { pad: 1 }, /pad 1; supported: 'valid' or 'same'/],
    ['pad', { pad: [[0, 0], [1, 1], [1, 1], [0, 0]] }, /pad \[\[0,0\],\[1,1\],\[1,1\],\[0,0\]\]; supported/],
    ['strides', { strides: 3 }, /strides 3; supported: 1 or 2/],
    ['strides', { strides: [1, 3] }, /strides \[1,3\]; supported: 1 or 2/],
    ['dataFormat', { dataFormat: 'NCHW' }, /dataFormat "NCHW"; supported: 'NHWC'/],
    ['dilations', { dilations: 2 }, /dilations 2; supported: 1/],
  ])('%s: %j', (_name, attrs, message) => {
    setWasmKernelSet('ddp');
    expect(run(attrs as NamedAttrMap)).toThrow(new RegExp(`ddp wasm kernel ${kernel}: unsupported ${message.source}`));
  });

  it('accepts the channelsLast spelling of NHWC and strides [1, 2]', () => {
    setWasmKernelSet('ddp');
    const ok = kernel === 'Conv2DBackpropFilter'
      ? filterGrad({ dataFormat: 'channelsLast' })
      : inputGrad({ dataFormat: 'channelsLast' });
    expect(ok).not.toThrow();
  });
});

describe('MaxPoolGrad rejects what it does not support', () => {
  it.each([
    ['pad', { pad: 0 }, /unsupported pad 0; supported: 'valid' or 'same'/],
    ['strides', { strides: 0 }, /unsupported strides 0; supported: positive integers/],
    ['filterSize', { filterSize: [2, 0] }, /unsupported filterSize \[2,0\]; supported: positive integers/],
  ])('%s: %j', (_name, attrs, message) => {
    setWasmKernelSet('ddp');
    expect(poolGrad(attrs as NamedAttrMap)).toThrow(new RegExp(`ddp wasm kernel MaxPoolGrad: ${message.source}`));
  });
});

it('rejects a dy whose shape does not fit the attributes, naming both shapes', () => {
  setWasmKernelSet('ddp');
  const run = () => tf.tidy(() => tf.engine().runKernel('Conv2DBackpropFilter', { x: x(), dy: tf.zeros([1, 5, 5, 3]) }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3] }));
  expect(run).toThrow(/Conv2DBackpropFilter: dy has shape \[1,5,5,3\], expected \[1,4,4,3\]/);
});

it('setWasmKernelSet rejects an unknown set', () => {
  expect(() => setWasmKernelSet('fast' as never)).toThrow(/unknown kernel set "fast" \(expected 'ddp' or 'naive'\)/);
});
